/* test_anthropic.c: the Anthropic wire format on fixed inputs, both ways:
 * OpenAI requests (tools, tool results, response_format, images) become
 * Messages API bodies or a 400 naming the field; Messages API answers,
 * whole and streamed (tool_use blocks, input_json_delta), become OpenAI's.
 * Also the OpenAI provider's pass-through, the one field-by-field contrast. */
#include "provider.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static up_def claude_def(void)
{
    up_def d;
    up_def_defaults(&d);
    snprintf(d.name, sizeof(d.name), "claude");
    snprintf(d.model, sizeof(d.model), "claude-x");
    d.provider = UP_ANTHROPIC;
    return d;
}

/* The Anthropic body for an OpenAI request (JSON text); asserts success. */
static cJSON *to_anthropic(const char *request, bool stream)
{
    cJSON *req = cJSON_Parse(request);
    assert_non_null(req);
    up_def d = claude_def();
    up_error err = {0};
    char *body = up_provider_for(UP_ANTHROPIC)->build_body(req, &d, stream, &err);
    if (!body) fail_msg("refused: %s", err.message);
    cJSON *j = cJSON_Parse(body);
    cJSON_free(body);
    cJSON_Delete(req);
    assert_non_null(j);
    return j;
}

/* The refusal for an OpenAI request that Anthropic cannot take. */
static up_error refusal(const char *request)
{
    cJSON *req = cJSON_Parse(request);
    assert_non_null(req);
    up_def d = claude_def();
    up_error err = {0};
    char *body = up_provider_for(UP_ANTHROPIC)->build_body(req, &d, false, &err);
    cJSON_Delete(req);
    if (body) fail_msg("translated, expected a refusal: %s", body);
    assert_int_equal(err.cause, UP_E_UNTRANSLATABLE);
    assert_string_equal(err.type, "invalid_request_error");
    assert_non_null(strstr(err.message, "'claude'"));
    return err;
}

/* Compare a JSON value with JSON text. */
static void assert_json(const cJSON *got, const char *want_text)
{
    cJSON *want = cJSON_Parse(want_text);
    assert_non_null(want);
    bool same = cJSON_Compare(got, want, 1);
    cJSON_Delete(want);
    if (!same) {
        char text[2048];
        char *g = cJSON_PrintUnformatted(got);
        snprintf(text, sizeof(text), "%s", g ? g : "(null)");
        cJSON_free(g);
        fail_msg("got %s\nwant %s", text, want_text);
    }
}

#define AT(o, k) cJSON_GetObjectItemCaseSensitive(o, k)

/* ---- OpenAI -> Anthropic ---- */

static void test_tools_and_choice(void **s)
{
    (void)s;
    cJSON *b = to_anthropic(
        "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Look it up\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"now\"}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},\"parallel_tool_calls\":false}",
        false);
    assert_json(AT(b, "tools"),
                "[{\"name\":\"get_weather\",\"description\":\"Look it up\",\"input_schema\":{\"type\":\"object\","
                "\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}},"
                "{\"name\":\"now\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}]");
    assert_json(AT(b, "tool_choice"), "{\"type\":\"tool\",\"name\":\"get_weather\",\"disable_parallel_tool_use\":true}");
    assert_string_equal(AT(b, "model")->valuestring, "claude-x");
    assert_null(AT(b, "parallel_tool_calls"));
    cJSON_Delete(b);

    static const struct { const char *openai, *anthropic; } modes[] = {
        {"\"auto\"", "{\"type\":\"auto\"}"}, {"\"required\"", "{\"type\":\"any\"}"}, {"\"none\"", "{\"type\":\"none\"}"},
    };
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        char req[512];
        snprintf(req, sizeof(req), "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\","
                 "\"function\":{\"name\":\"f\"}}],\"tool_choice\":%s}", modes[i].openai);
        b = to_anthropic(req, false);
        assert_json(AT(b, "tool_choice"), modes[i].anthropic);
        cJSON_Delete(b);
    }
}

/* A whole tool round: the assistant's calls become tool_use blocks, the
 * tool messages one user turn of tool_result blocks. */
static void test_tool_round_trip_messages(void **s)
{
    (void)s;
    cJSON *b = to_anthropic(
        "{\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Use \"},{\"type\":\"text\",\"text\":\"tools.\"}]},"
        "{\"role\":\"user\",\"content\":\"Paris and Rome?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
        "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"15 C\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":[{\"type\":\"text\",\"text\":\"21 C\"}]},"
        "{\"role\":\"assistant\",\"content\":\"Paris 15, Rome 21.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Thanks\"}]}]}",
        true);
    assert_string_equal(AT(b, "system")->valuestring, "Be brief.\n\nUse tools.");
    assert_json(AT(b, "messages"),
                "[{\"role\":\"user\",\"content\":\"Paris and Rome?\"},"
                "{\"role\":\"assistant\",\"content\":["
                "{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}},"
                "{\"type\":\"tool_use\",\"id\":\"call_2\",\"name\":\"get_weather\",\"input\":{\"city\":\"Rome\"}}]},"
                "{\"role\":\"user\",\"content\":["
                "{\"type\":\"tool_result\",\"tool_use_id\":\"call_1\",\"content\":\"15 C\"},"
                "{\"type\":\"tool_result\",\"tool_use_id\":\"call_2\",\"content\":\"21 C\"}]},"
                "{\"role\":\"assistant\",\"content\":\"Paris 15, Rome 21.\"},"
                "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Thanks\"}]}]");
    assert_true(cJSON_IsTrue(AT(b, "stream")));
    assert_int_equal(AT(b, "max_tokens")->valueint, 4096);
    cJSON_Delete(b);
}

static void test_fields_table(void **s)
{
    (void)s;
    cJSON *b = to_anthropic(
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"see\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0=\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/cat.jpg\"}}]}],"
        "\"max_completion_tokens\":77,\"temperature\":0.2,\"top_p\":0.9,\"stop\":[\"END\"],\"user\":\"u-42\","
        "\"metadata\":{\"k\":\"v\"},\"store\":true,\"seed\":1,\"service_tier\":\"auto\",\"reasoning_effort\":\"low\","
        "\"n\":1,\"logprobs\":false,\"modalities\":[\"text\"],\"logit_bias\":{},\"stream_options\":{\"include_usage\":true},"
        "\"some_future_field\":{\"x\":1},"
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"r\",\"strict\":true,"
        "\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},\"additionalProperties\":false}}}}",
        false);
    assert_json(b, "{\"model\":\"claude-x\",\"max_tokens\":77,\"temperature\":0.2,\"top_p\":0.9,"
                   "\"stop_sequences\":[\"END\"],"
                   "\"output_config\":{\"format\":{\"type\":\"json_schema\",\"schema\":{\"type\":\"object\","
                   "\"properties\":{\"a\":{\"type\":\"string\"}},\"additionalProperties\":false}}},"
                   "\"metadata\":{\"user_id\":\"u-42\"},"
                   "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"see\"},"
                   "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0=\"}},"
                   "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://example.com/cat.jpg\"}}]}]}");
    cJSON_Delete(b);
}

static void test_refusals_name_the_field(void **s)
{
    (void)s;
    static const struct { const char *extra, *param, *says; } cases[] = {
        {"\"response_format\":{\"type\":\"json_object\"}", "response_format", "json_schema"},
        {"\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\"}}", "response_format.json_schema.schema", "schema"},
        {"\"n\":2", "n", "'n'"},
        {"\"logprobs\":true", "logprobs", "'logprobs'"},
        {"\"logit_bias\":{\"50256\":-100}", "logit_bias", "'logit_bias'"},
        {"\"modalities\":[\"text\",\"audio\"]", "modalities", "'modalities'"},
        {"\"web_search_options\":{}", "web_search_options", "'web_search_options'"},
        {"\"tools\":[{\"type\":\"custom\",\"custom\":{\"name\":\"c\"}}]", "tools[0]", "'custom'"},
        {"\"tool_choice\":{\"type\":\"allowed_tools\"}", "tool_choice", "tool_choice"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char req[512];
        snprintf(req, sizeof(req), "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s}", cases[i].extra);
        up_error e = refusal(req);
        assert_string_equal(e.param, cases[i].param);
        assert_non_null(strstr(e.message, cases[i].says));
    }
    /* in messages: the part and the call are named by position */
    up_error e = refusal("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\",\"input_audio\":{}}]}]}");
    assert_string_equal(e.param, "messages[0].content[0]");
    e = refusal("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\","
                "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"[1,2]\"}}]}]}");
    assert_string_equal(e.param, "messages[1].tool_calls[0].function.arguments");
    e = refusal("{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}");
    assert_string_equal(e.param, "messages[0].tool_call_id");
    e = refusal("{\"messages\":[{\"role\":\"function\",\"name\":\"f\",\"content\":\"x\"}]}");
    assert_string_equal(e.param, "messages[0].role");
}

/* ---- Anthropic -> OpenAI, whole ---- */

static cJSON *from_anthropic(const char *answer, up_usage *usage, char *finish, size_t finish_len)
{
    char *out = up_provider_for(UP_ANTHROPIC)->translate(answer, strlen(answer), usage, finish, finish_len);
    assert_non_null(out);
    cJSON *j = cJSON_Parse(out);
    cJSON_free(out);
    assert_non_null(j);
    return j;
}

static void test_whole_answer_with_tool_use(void **s)
{
    (void)s;
    up_usage usage = {0};
    char finish[32];
    cJSON *j = from_anthropic(
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":["
        "{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"s\"},"
        "{\"type\":\"text\",\"text\":\"Let me \"},{\"type\":\"text\",\"text\":\"check.\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\",\"days\":3}}],"
        "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":12,\"output_tokens\":7}}",
        &usage, finish, sizeof(finish));
    const cJSON *ch = cJSON_GetArrayItem(AT(j, "choices"), 0);
    assert_json(AT(ch, "message"),
                "{\"role\":\"assistant\",\"content\":\"Let me check.\",\"tool_calls\":[{\"id\":\"toolu_1\","
                "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\",\\\"days\\\":3}\"}}]}");
    assert_string_equal(AT(ch, "finish_reason")->valuestring, "tool_calls");
    assert_string_equal(finish, "tool_calls");
    assert_int_equal(usage.prompt_tokens, 12);
    assert_int_equal(usage.completion_tokens, 7);
    cJSON_Delete(j);

    /* only a tool call: content is null, as OpenAI says it */
    j = from_anthropic("{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}],"
                       "\"stop_reason\":\"tool_use\"}", &usage, finish, sizeof(finish));
    assert_true(cJSON_IsNull(AT(AT(cJSON_GetArrayItem(AT(j, "choices"), 0), "message"), "content")));
    cJSON_Delete(j);

    /* a tool_use block without its input is not an Anthropic answer */
    const char *bad = "{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\"}]}";
    assert_null(up_provider_for(UP_ANTHROPIC)->translate(bad, strlen(bad), &usage, finish, sizeof(finish)));
}

/* ---- Anthropic -> OpenAI, streamed ---- */

typedef struct {
    cJSON *chunks; /* array of what was emitted */
} sink;

static void collect(void *arg, cJSON *chunk)
{
    cJSON_AddItemToArray(((sink *)arg)->chunks, chunk);
}

static up_cause feed(up_stream_state *st, sink *k, const char *event, const char *data)
{
    return up_provider_for(UP_ANTHROPIC)->on_event(st, event, data, strlen(data), collect, k);
}

static void test_streamed_tool_use(void **s)
{
    (void)s;
    static const char *const events[][2] = {
        {"message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"model\":\"claude-x\",\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}"},
        {"content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}"},
        {"ping", "{\"type\":\"ping\"}"},
        {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking.\"}}"},
        {"content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}"},
        {"content_block_start", "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_a\",\"name\":\"get_weather\",\"input\":{}}}"},
        {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Pa\"}}"},
        {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ris\\\"}\"}}"},
        {"content_block_stop", "{\"type\":\"content_block_stop\",\"index\":1}"},
        {"content_block_start", "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_b\",\"name\":\"now\",\"input\":{}}}"},
        {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}"},
        {"content_block_stop", "{\"type\":\"content_block_stop\",\"index\":2}"},
        {"message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":20}}"},
        {"message_stop", "{\"type\":\"message_stop\"}"},
    };
    up_stream_state st = {0};
    sink k = {cJSON_CreateArray()};
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        assert_int_equal(feed(&st, &k, events[i][0], events[i][1]), UP_OK);
    assert_true(st.done);
    assert_string_equal(st.finish_reason, "tool_calls");
    assert_int_equal(st.usage.prompt_tokens, 9);
    assert_int_equal(st.usage.completion_tokens, 20);
    /* the deltas, as OpenAI streams them */
    static const char *const deltas[] = {
        "{\"role\":\"assistant\",\"content\":\"\"}",
        "{\"content\":\"Checking.\"}",
        "{\"tool_calls\":[{\"index\":0,\"id\":\"toolu_a\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}",
        "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\": \\\"Pa\"}}]}",
        "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"ris\\\"}\"}}]}",
        "{\"tool_calls\":[{\"index\":1,\"id\":\"toolu_b\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"\"}}]}",
        "{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{}\"}}]}",
        "{}",
    };
    assert_int_equal(cJSON_GetArraySize(k.chunks), sizeof(deltas) / sizeof(deltas[0]));
    for (int i = 0; i < cJSON_GetArraySize(k.chunks); i++) {
        const cJSON *c = cJSON_GetArrayItem(k.chunks, i);
        assert_string_equal(AT(c, "object")->valuestring, "chat.completion.chunk");
        assert_string_equal(AT(c, "id")->valuestring, "chatcmpl-msg_2");
        const cJSON *ch = cJSON_GetArrayItem(AT(c, "choices"), 0);
        assert_json(AT(ch, "delta"), deltas[i]);
        bool last = i == cJSON_GetArraySize(k.chunks) - 1;
        if (last) assert_string_equal(AT(ch, "finish_reason")->valuestring, "tool_calls");
        else assert_true(cJSON_IsNull(AT(ch, "finish_reason")));
    }
    cJSON_Delete(k.chunks);
}

static void test_stream_faults(void **s)
{
    (void)s;
    up_stream_state st = {0};
    sink k = {cJSON_CreateArray()};
    /* an input_json_delta outside any tool_use block */
    assert_int_equal(feed(&st, &k, "content_block_delta",
                          "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}"),
                     UP_E_BAD_REPLY);
    assert_non_null(strstr(st.error, "input_json_delta"));
    /* a tool_use start without its id */
    assert_int_equal(feed(&st, &k, "content_block_start",
                          "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"name\":\"f\"}}"),
                     UP_E_BAD_REPLY);
    /* the upstream's own error event is its failure, not a malformed stream */
    memset(&st, 0, sizeof(st));
    assert_int_equal(feed(&st, &k, "error", "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}"),
                     UP_E_UPSTREAM);
    assert_string_equal(st.error, "Overloaded");
    assert_int_equal(feed(&st, &k, "x", "not json"), UP_E_BAD_REPLY);
    assert_int_equal(cJSON_GetArraySize(k.chunks), 0);
    cJSON_Delete(k.chunks);
}

/* ---- the OpenAI provider: everything passes, model and include_usage aside ---- */

static void test_openai_passes_everything(void **s)
{
    (void)s;
    const char *request =
        "{\"model\":\"frontier\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"auto\","
        "\"parallel_tool_calls\":false,\"response_format\":{\"type\":\"json_object\"},\"logit_bias\":{\"50256\":-100},"
        "\"reasoning_effort\":\"low\",\"metadata\":{\"k\":\"v\"},\"store\":true,\"service_tier\":\"flex\",\"user\":\"u\","
        "\"max_completion_tokens\":9,\"modalities\":[\"text\"],\"prediction\":{\"type\":\"content\",\"content\":\"p\"},"
        "\"web_search_options\":{},\"unheard_of\":[1,{\"a\":null}],\"stream\":true,\"stream_options\":{\"other\":1}}";
    cJSON *req = cJSON_Parse(request);
    up_def d;
    up_def_defaults(&d);
    snprintf(d.name, sizeof(d.name), "frontier");
    snprintf(d.model, sizeof(d.model), "gpt-x");
    up_error err = {0};
    char *body = up_provider_for(UP_OPENAI)->build_body(req, &d, true, &err);
    assert_non_null(body);
    cJSON *b = cJSON_Parse(body);
    cJSON_free(body);
    /* the same object, but for model and include_usage; the field order kept */
    cJSON_ReplaceItemInObjectCaseSensitive(req, "model", cJSON_CreateString("gpt-x"));
    cJSON_AddBoolToObject(AT(req, "stream_options"), "include_usage", 1);
    assert_true(cJSON_Compare(b, req, 1));
    assert_string_equal(b->child->string, "model");
    cJSON_Delete(b);
    cJSON_Delete(req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tools_and_choice),
        cmocka_unit_test(test_tool_round_trip_messages),
        cmocka_unit_test(test_fields_table),
        cmocka_unit_test(test_refusals_name_the_field),
        cmocka_unit_test(test_whole_answer_with_tool_use),
        cmocka_unit_test(test_streamed_tool_use),
        cmocka_unit_test(test_stream_faults),
        cmocka_unit_test(test_openai_passes_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
