/* fake_frontier.c: a stand-in for frontier APIs, on loopback, for tests.
 *
 * Speaks OpenAI's chat completions (POST /v1/chat/completions) and
 * Anthropic's Messages API (POST /v1/messages), whole or streamed, with real
 * usage numbers (one token per word). A fault is chosen per request by a
 * directive in the last user message, "#fault:NAME", or an X-Fake-Fault
 * header:
 *   delay:MS   wait before answering       drip:MS  stream chunks MS apart
 *   429        rate limited, Retry-After 1  500      server error
 *   flaky:K    500 for the first K requests with the same prompt, then fine
 *   drop       close the connection mid-answer
 *   badjson    a 200 whose body is not JSON
 *   badsse     a stream whose second event is not JSON
 *   huge       a 40 MiB body                hang     never answer
 *   nousage    a stream without token counts
 *   long:N     stream (or answer) N words "w1 w2 ... wN" as fast as the client takes them
 *              (64 events at a time; the next ones wait while 256 KiB are unsent)
 *   reject     a 400 whose error carries type, code and param (Anthropic's
 *              shape has type only), as a provider refusing a field does
 * A request with "tools" whose last message is not a tool result gets a
 * tool call of its first tool with the arguments {"city":"Paris","days":3},
 * in the provider's real wire format: OpenAI tool_calls (whole only), or
 * Anthropic tool_use content blocks (whole, or streamed as a tool_use
 * content_block_start and input_json_delta pieces). Tool results count as
 * the user's text, so the answer after one echoes it.
 * With FAKE_EXPECT_KEY set, a request carrying another key gets 401, with
 * the key it sent echoed in the message (as real APIs partly do).
 * Every request, and every connection the client closes while waiting, is
 * appended as a JSON line to the --record file; a close says how many of
 * the stream's words had been handed to the connection by then
 * ({"event":"closed","words_sent":K,"words":N}), so a test can tell a
 * stream cut short from one the client let finish.
 *
 * usage: fake_frontier [--record FILE]   (prints "listening on 127.0.0.1:PORT")
 */
#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

static struct event_base *base;
static FILE *record;
static const char *expect_key;

typedef struct {
    char prompt[256];
    int count;
} flaky_entry;
static flaky_entry flaky[64];

typedef struct answer {
    struct evhttp_request *req;
    char tool[64];          /* non-empty: answer with a call of this tool */
    bool anthropic, stream, include_usage, drop, bad_sse;
    int drip_ms;
    char **words;
    int n_words, next;
    int prompt_tokens;
    struct event *timer;
    struct event *hangup;   /* the client closing while we make it wait */
    int phase;              /* 0: before headers; 1..: streaming */
} answer;

static void record_line(cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    if (record && s) {
        fprintf(record, "%s\n", s);
        fflush(record);
    }
    free(s);
    cJSON_Delete(j);
}

static void send_json(struct evhttp_request *req, int status, const char *body, const char *extra_header, const char *extra_value)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    if (extra_header) evhttp_add_header(evhttp_request_get_output_headers(req), extra_header, extra_value);
    evhttp_send_reply(req, status, NULL, b);
    evbuffer_free(b);
}

static void send_error(struct evhttp_request *req, int status, const char *message, bool anthropic)
{
    cJSON *root = cJSON_CreateObject();
    if (anthropic) cJSON_AddStringToObject(root, "type", "error");
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "type", status == 429 ? "rate_limit_error" : status == 401 ? "authentication_error" :
                                       status == 400 ? "invalid_request_error" : "api_error");
    cJSON_AddStringToObject(e, "message", message);
    if (status == 400 && !anthropic) {
        cJSON_AddStringToObject(e, "param", "tools[0].function.name");
        cJSON_AddStringToObject(e, "code", "invalid_value");
    }
    char *s = cJSON_PrintUnformatted(root);
    send_json(req, status, s, status == 429 ? "Retry-After" : NULL, "1");
    free(s);
    cJSON_Delete(root);
}

static int count_words(const char *s)
{
    int n = 0;
    bool in = false;
    for (; *s; s++) {
        bool space = *s == ' ' || *s == '\n' || *s == '\t';
        if (!space && !in) n++;
        in = !space;
    }
    return n;
}

static void answer_free(answer *a)
{
    for (int i = 0; i < a->n_words; i++) free(a->words[i]);
    free(a->words);
    if (a->timer) event_free(a->timer);
    if (a->hangup) event_free(a->hangup);
    free(a);
}

/* evhttp does not read while an answer is pending, so watch for the hang-up. */
static void on_hangup(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    answer *a = arg;
    evhttp_connection_free(evhttp_request_get_connection(a->req)); /* calls on_client_closed */
}

static void on_client_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    answer *a = arg;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "event", "closed");
    cJSON_AddNumberToObject(j, "words_sent", a->next);
    cJSON_AddNumberToObject(j, "words", a->n_words);
    record_line(j);
    answer_free(a);
}

static void finish_answer(answer *a)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(a->req);
    if (evcon) evhttp_connection_set_closecb(evcon, NULL, NULL);
    answer_free(a);
}

static void send_event(answer *a, const char *event, cJSON *data)
{
    char *s = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    struct evbuffer *b = evbuffer_new();
    if (event) evbuffer_add_printf(b, "event: %s\r\n", event);
    evbuffer_add_printf(b, "data: %s\r\n\r\n", s);
    evhttp_send_reply_chunk(a->req, b);
    evbuffer_free(b);
    free(s);
}

static cJSON *openai_chunk(const char *content, const char *finish, bool role)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "id", "chatcmpl-fake1");
    cJSON_AddStringToObject(c, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(c, "created", 1700000000);
    cJSON_AddStringToObject(c, "model", "fake-gpt");
    cJSON *choices = cJSON_AddArrayToObject(c, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", 0);
    cJSON *d = cJSON_AddObjectToObject(ch, "delta");
    if (role) cJSON_AddStringToObject(d, "role", "assistant");
    if (content) cJSON_AddStringToObject(d, "content", content);
    if (finish) cJSON_AddStringToObject(ch, "finish_reason", finish);
    else cJSON_AddNullToObject(ch, "finish_reason");
    cJSON_AddItemToArray(choices, ch);
    return c;
}

static void send_block_stop(answer *a, int index)
{
    cJSON *stop = cJSON_CreateObject();
    cJSON_AddStringToObject(stop, "type", "content_block_stop");
    cJSON_AddNumberToObject(stop, "index", index);
    send_event(a, "content_block_stop", stop);
}

#define TOOL_ID "toolu_fake1"
#define TOOL_ARGS_1 "{\"city\": \"Par"
#define TOOL_ARGS_2 "is\", \"days\": 3}"

/* Anthropic's streamed tool_use block: its start, then the input as JSON text in pieces. */
static void stream_tool_use(answer *a)
{
    cJSON *start = cJSON_CreateObject();
    cJSON_AddStringToObject(start, "type", "content_block_start");
    cJSON_AddNumberToObject(start, "index", 1);
    cJSON *block = cJSON_AddObjectToObject(start, "content_block");
    cJSON_AddStringToObject(block, "type", "tool_use");
    cJSON_AddStringToObject(block, "id", TOOL_ID);
    cJSON_AddStringToObject(block, "name", a->tool);
    cJSON_AddObjectToObject(block, "input");
    send_event(a, "content_block_start", start);
    const char *pieces[] = {"", TOOL_ARGS_1, TOOL_ARGS_2};
    for (int i = 0; i < 3; i++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "type", "content_block_delta");
        cJSON_AddNumberToObject(d, "index", 1);
        cJSON *delta = cJSON_AddObjectToObject(d, "delta");
        cJSON_AddStringToObject(delta, "type", "input_json_delta");
        cJSON_AddStringToObject(delta, "partial_json", pieces[i]);
        send_event(a, "content_block_delta", d);
    }
    send_block_stop(a, 1);
}

#define UNSENT_MAX (256 << 10) /* a stream's next word waits while this much is unsent */

/* One step of a streamed answer; re-arms itself until the end. */
static void stream_step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    answer *a = arg;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(a->req));
    if (a->phase > 0 && evbuffer_get_length(bufferevent_get_output(bev)) > UNSENT_MAX) {
        struct timeval later = {0, 1000}; /* the client is behind: as fast as it takes them, not faster */
        evtimer_add(a->timer, &later);
        return;
    }
    if (a->phase == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(a->req), "Content-Type", "text/event-stream");
        evhttp_send_reply_start(a->req, 200, "OK");
        if (a->anthropic) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "type", "message_start");
            cJSON *msg = cJSON_AddObjectToObject(m, "message");
            cJSON_AddStringToObject(msg, "id", "msg_fake1");
            cJSON_AddStringToObject(msg, "model", "fake-claude");
            cJSON *u = cJSON_AddObjectToObject(msg, "usage");
            cJSON_AddNumberToObject(u, "input_tokens", a->prompt_tokens);
            cJSON_AddNumberToObject(u, "output_tokens", 1);
            send_event(a, "message_start", m);
            cJSON *start = cJSON_CreateObject();
            cJSON_AddStringToObject(start, "type", "content_block_start");
            cJSON_AddNumberToObject(start, "index", 0);
            cJSON *block = cJSON_AddObjectToObject(start, "content_block");
            cJSON_AddStringToObject(block, "type", "text");
            cJSON_AddStringToObject(block, "text", "");
            send_event(a, "content_block_start", start);
            cJSON *ping = cJSON_CreateObject();
            cJSON_AddStringToObject(ping, "type", "ping");
            send_event(a, "ping", ping);
        } else {
            send_event(a, NULL, openai_chunk("", NULL, true));
        }
        a->phase = 1;
    } else if (a->next < a->n_words) {
        if (a->drop && a->next == 2) { /* cut the connection mid-stream */
            struct evhttp_connection *evcon = evhttp_request_get_connection(a->req);
            evhttp_connection_set_closecb(evcon, NULL, NULL);
            evhttp_connection_free(evcon);
            answer_free(a);
            return;
        }
        if (a->bad_sse && a->next == 1) {
            struct evbuffer *b = evbuffer_new();
            evbuffer_add_printf(b, "data: {\"broken\": \n\n");
            evhttp_send_reply_chunk(a->req, b);
            evbuffer_free(b);
        }
        /* a fault-free stream without drip sends words in bursts, so that
         * junction, not the fake, is what limits a fast stream */
        int burst = a->drip_ms || a->drop || a->bad_sse ? 1 : 64;
        for (int k = 0; k < burst && a->next < a->n_words; k++, a->next++) {
            char piece[300];
            snprintf(piece, sizeof(piece), "%s%s", a->next ? " " : "", a->words[a->next]);
            if (a->anthropic) {
                cJSON *d = cJSON_CreateObject();
                cJSON_AddStringToObject(d, "type", "content_block_delta");
                cJSON_AddNumberToObject(d, "index", 0);
                cJSON *delta = cJSON_AddObjectToObject(d, "delta");
                cJSON_AddStringToObject(delta, "type", "text_delta");
                cJSON_AddStringToObject(delta, "text", piece);
                send_event(a, "content_block_delta", d);
            } else {
                send_event(a, NULL, openai_chunk(piece, NULL, false));
            }
        }
    } else {
        if (a->anthropic) {
            send_block_stop(a, 0);
            if (a->tool[0]) stream_tool_use(a);
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "type", "message_delta");
            cJSON_AddStringToObject(cJSON_AddObjectToObject(d, "delta"), "stop_reason", a->tool[0] ? "tool_use" : "end_turn");
            cJSON_AddNumberToObject(cJSON_AddObjectToObject(d, "usage"), "output_tokens", a->n_words);
            send_event(a, "message_delta", d);
            cJSON *s = cJSON_CreateObject();
            cJSON_AddStringToObject(s, "type", "message_stop");
            send_event(a, "message_stop", s);
        } else {
            send_event(a, NULL, openai_chunk(NULL, "stop", false));
            if (a->include_usage) {
                cJSON *c = openai_chunk(NULL, NULL, false);
                cJSON_DeleteItemFromObject(c, "choices");
                cJSON_AddArrayToObject(c, "choices");
                cJSON *u = cJSON_AddObjectToObject(c, "usage");
                cJSON_AddNumberToObject(u, "prompt_tokens", a->prompt_tokens);
                cJSON_AddNumberToObject(u, "completion_tokens", a->n_words);
                cJSON_AddNumberToObject(u, "total_tokens", a->prompt_tokens + a->n_words);
                send_event(a, NULL, c);
            }
            struct evbuffer *b = evbuffer_new();
            evbuffer_add_printf(b, "data: [DONE]\n\n");
            evhttp_send_reply_chunk(a->req, b);
            evbuffer_free(b);
        }
        evhttp_send_reply_end(a->req);
        finish_answer(a);
        return;
    }
    struct timeval tv = {a->drip_ms / 1000, (a->drip_ms % 1000) * 1000};
    evtimer_add(a->timer, &tv);
}

static void send_whole(answer *a)
{
    char text[4096] = "";
    for (int i = 0; i < a->n_words; i++) {
        if (i) strcat(text, " ");
        strncat(text, a->words[i], sizeof(text) - strlen(text) - 2);
    }
    cJSON *root = cJSON_CreateObject();
    if (a->anthropic) {
        cJSON_AddStringToObject(root, "id", "msg_fake1");
        cJSON_AddStringToObject(root, "type", "message");
        cJSON_AddStringToObject(root, "role", "assistant");
        cJSON_AddStringToObject(root, "model", "fake-claude");
        cJSON *content = cJSON_AddArrayToObject(root, "content");
        cJSON *block = cJSON_CreateObject();
        cJSON_AddStringToObject(block, "type", "text");
        cJSON_AddStringToObject(block, "text", text);
        cJSON_AddItemToArray(content, block);
        if (a->tool[0]) {
            cJSON *use = cJSON_CreateObject();
            cJSON_AddStringToObject(use, "type", "tool_use");
            cJSON_AddStringToObject(use, "id", TOOL_ID);
            cJSON_AddStringToObject(use, "name", a->tool);
            cJSON_AddItemToObject(use, "input", cJSON_Parse(TOOL_ARGS_1 TOOL_ARGS_2));
            cJSON_AddItemToArray(content, use);
        }
        cJSON_AddStringToObject(root, "stop_reason", a->tool[0] ? "tool_use" : "end_turn");
        cJSON *u = cJSON_AddObjectToObject(root, "usage");
        cJSON_AddNumberToObject(u, "input_tokens", a->prompt_tokens);
        cJSON_AddNumberToObject(u, "output_tokens", a->n_words);
    } else {
        cJSON_AddStringToObject(root, "id", "chatcmpl-fake1");
        cJSON_AddStringToObject(root, "object", "chat.completion");
        cJSON_AddNumberToObject(root, "created", 1700000000);
        cJSON_AddStringToObject(root, "model", "fake-gpt");
        cJSON *choices = cJSON_AddArrayToObject(root, "choices");
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddNumberToObject(ch, "index", 0);
        cJSON *m = cJSON_AddObjectToObject(ch, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddStringToObject(m, "content", text);
        if (a->tool[0]) {
            cJSON *call = cJSON_CreateObject();
            cJSON_AddStringToObject(call, "id", "call_fake1");
            cJSON_AddStringToObject(call, "type", "function");
            cJSON *fn = cJSON_AddObjectToObject(call, "function");
            cJSON_AddStringToObject(fn, "name", a->tool);
            cJSON_AddStringToObject(fn, "arguments", TOOL_ARGS_1 TOOL_ARGS_2);
            cJSON_AddItemToArray(cJSON_AddArrayToObject(m, "tool_calls"), call);
        }
        cJSON_AddStringToObject(ch, "finish_reason", a->tool[0] ? "tool_calls" : "stop");
        cJSON_AddItemToArray(choices, ch);
        cJSON *u = cJSON_AddObjectToObject(root, "usage");
        cJSON_AddNumberToObject(u, "prompt_tokens", a->prompt_tokens);
        cJSON_AddNumberToObject(u, "completion_tokens", a->n_words);
        cJSON_AddNumberToObject(u, "total_tokens", a->prompt_tokens + a->n_words);
    }
    char *s = cJSON_PrintUnformatted(root);
    send_json(a->req, 200, s, NULL, NULL);
    free(s);
    cJSON_Delete(root);
    finish_answer(a);
}

static void delayed_whole(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    send_whole(arg);
}

/* The text of a content value: a string, or the last text (or tool_result
 * content) among its blocks. */
static const char *content_text(const cJSON *c, bool *tool_result)
{
    if (cJSON_IsString(c)) return c->valuestring;
    const char *t = NULL;
    for (const cJSON *b = cJSON_IsArray(c) ? c->child : NULL; b; b = b->next) {
        const cJSON *type = cJSON_GetObjectItem(b, "type");
        const char *ty = cJSON_IsString(type) ? type->valuestring : "";
        const cJSON *text = cJSON_GetObjectItem(b, !strcmp(ty, "tool_result") ? "content" : "text");
        if (cJSON_IsString(text)) t = text->valuestring;
        if (!strcmp(ty, "tool_result")) *tool_result = true;
    }
    return t;
}

/* The last user message's text (a tool result counts); whether it is a tool result. */
static const char *last_user_text(const cJSON *body, bool *tool_result)
{
    const char *t = "";
    const cJSON *msgs = cJSON_GetObjectItem(body, "messages");
    for (const cJSON *m = msgs ? msgs->child : NULL; m; m = m->next) {
        const cJSON *r = cJSON_GetObjectItem(m, "role");
        bool is_tool = cJSON_IsString(r) && !strcmp(r->valuestring, "tool");
        if (!cJSON_IsString(r) || (strcmp(r->valuestring, "user") && !is_tool)) continue;
        bool result = is_tool;
        const char *c = content_text(cJSON_GetObjectItem(m, "content"), &result);
        if (c) {
            t = c;
            *tool_result = result;
        }
    }
    return t;
}

static int prompt_words(const cJSON *body)
{
    int n = 0;
    const cJSON *sys = cJSON_GetObjectItem(body, "system");
    if (cJSON_IsString(sys)) n += count_words(sys->valuestring);
    const cJSON *msgs = cJSON_GetObjectItem(body, "messages");
    for (const cJSON *m = msgs ? msgs->child : NULL; m; m = m->next) {
        const cJSON *c = cJSON_GetObjectItem(m, "content");
        if (cJSON_IsString(c)) n += count_words(c->valuestring);
    }
    return n;
}

static void handle(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    bool anthropic = path && !strcmp(path, "/v1/messages");
    if (!path || (!anthropic && strcmp(path, "/v1/chat/completions"))) {
        send_error(req, 404, "no such endpoint", false);
        return;
    }
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evbuffer *buf = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(buf);
    cJSON *body = cJSON_ParseWithLength((const char *)evbuffer_pullup(buf, -1), len);

    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "event", "request");
    cJSON_AddStringToObject(rec, "path", path);
    const char *hdrs[] = {"Authorization", "x-api-key", "api-key", "anthropic-version", "X-Custom", "Content-Type", "Accept"};
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        const char *v = evhttp_find_header(in, hdrs[i]);
        if (v) cJSON_AddStringToObject(rec, hdrs[i], v);
    }
    cJSON_AddItemToObject(rec, "body", body ? cJSON_Duplicate(body, 1) : cJSON_CreateNull());
    record_line(rec);

    if (!body) {
        send_error(req, 400, "could not parse the JSON body", anthropic);
        return;
    }
    if (expect_key) {
        const char *auth = anthropic ? evhttp_find_header(in, "x-api-key") : evhttp_find_header(in, "Authorization");
        const char *key = auth && !anthropic && !strncmp(auth, "Bearer ", 7) ? auth + 7 : auth;
        if (!key || strcmp(key, expect_key)) {
            char msg[512];
            snprintf(msg, sizeof(msg), "Incorrect API key provided: %s.", key ? key : "(none)");
            send_error(req, 401, msg, anthropic);
            cJSON_Delete(body);
            return;
        }
    }
    bool after_tool = false;
    const char *text = last_user_text(body, &after_tool);
    const char *fault = evhttp_find_header(in, "X-Fake-Fault");
    const char *directive = strstr(text, "#fault:");
    char fault_buf[64] = "";
    if (!fault && directive) {
        sscanf(directive + 7, "%63[a-z0-9:]", fault_buf);
        fault = fault_buf;
    }
    fault = fault ? fault : "";
    answer *a = calloc(1, sizeof(*a));
    a->req = req;
    a->anthropic = anthropic;
    a->stream = cJSON_IsTrue(cJSON_GetObjectItem(body, "stream"));
    a->include_usage = cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(body, "stream_options"), "include_usage")) &&
                       strcmp(fault, "nousage") != 0;
    a->prompt_tokens = prompt_words(body);
    int delay_ms = 0;
    if (!strncmp(fault, "delay:", 6)) delay_ms = atoi(fault + 6);
    if (!strncmp(fault, "drip:", 5)) a->drip_ms = atoi(fault + 5);
    a->drop = !strcmp(fault, "drop");
    a->bad_sse = !strcmp(fault, "badsse");

    const cJSON *tools = cJSON_GetObjectItem(body, "tools");
    if (cJSON_IsArray(tools) && tools->child && !after_tool) {
        const cJSON *t0 = tools->child;
        const cJSON *name = cJSON_GetObjectItem(anthropic ? t0 : cJSON_GetObjectItem(t0, "function"), "name");
        snprintf(a->tool, sizeof(a->tool), "%s", cJSON_IsString(name) ? name->valuestring : "unnamed");
    }
    if (!strcmp(fault, "reject")) {
        send_error(req, 400, "the fake refuses this request", anthropic);
        answer_free(a);
        cJSON_Delete(body);
        return;
    }
    if (!strcmp(fault, "429") || !strcmp(fault, "500")) {
        send_error(req, atoi(fault), "the fake was told to fail", anthropic);
        answer_free(a);
        cJSON_Delete(body);
        return;
    }
    if (!strncmp(fault, "flaky:", 6)) {
        int k = atoi(fault + 6);
        flaky_entry *e = NULL;
        for (int i = 0; i < 64 && !e; i++)
            if (!strcmp(flaky[i].prompt, text) || !flaky[i].prompt[0]) e = &flaky[i];
        if (e) {
            snprintf(e->prompt, sizeof(e->prompt), "%s", text);
            if (e->count++ < k) {
                send_error(req, 500, "flaky: failing this time", anthropic);
                answer_free(a);
                cJSON_Delete(body);
                return;
            }
        }
    }
    if (!strcmp(fault, "badjson")) {
        send_json(req, 200, "{\"id\": \"chatcmpl-broken\", \"choices\": [", NULL, NULL);
        answer_free(a);
        cJSON_Delete(body);
        return;
    }
    if (!strcmp(fault, "huge")) {
        struct evbuffer *b = evbuffer_new();
        evbuffer_add_printf(b, "{\"pad\":\"");
        static char chunk[1 << 16];
        memset(chunk, 'x', sizeof(chunk));
        /* by reference: copying 40 MiB first made the answer's first byte slow under ASan */
        for (int i = 0; i < 640; i++) evbuffer_add_reference(b, chunk, sizeof(chunk), NULL, NULL);
        evbuffer_add_printf(b, "\"}");
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
        evhttp_send_reply(req, 200, NULL, b);
        evbuffer_free(b);
        answer_free(a);
        cJSON_Delete(body);
        return;
    }
    if (!a->stream && a->drop) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(req);
        evhttp_connection_free(evcon);
        answer_free(a);
        cJSON_Delete(body);
        return;
    }
    /* the answer: "Hello from the fake PROVIDER! You said: TEXT" */
    char full[1024];
    snprintf(full, sizeof(full), "Hello from the fake %s! You said: %.900s", anthropic ? "anthropic" : "openai", text);
    int n_long = !strncmp(fault, "long:", 5) ? atoi(fault + 5) : 0;
    n_long = n_long < 0 ? 0 : n_long > 100000 ? 100000 : n_long;
    a->words = calloc(256 + (size_t)n_long, sizeof(char *));
    for (char *tok = strtok(full, " \n\t"); tok && a->n_words < 256 && !n_long; tok = strtok(NULL, " \n\t"))
        a->words[a->n_words++] = strdup(tok);
    for (int i = 1; i <= n_long; i++) {
        char w[16];
        snprintf(w, sizeof(w), "w%d", i);
        a->words[a->n_words++] = strdup(w);
    }
    cJSON_Delete(body);
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    evhttp_connection_set_closecb(evcon, on_client_closed, a);
    a->hangup = event_new(base, bufferevent_getfd(evhttp_connection_get_bufferevent(evcon)), EV_CLOSED, on_hangup, a);
    event_add(a->hangup, NULL);
    if (!strcmp(fault, "hang")) return; /* until the client gives up */
    a->timer = evtimer_new(base, a->stream ? stream_step : delayed_whole, a);
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    evtimer_add(a->timer, &tv);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--record") && i + 1 < argc) record = fopen(argv[++i], "a");
    expect_key = getenv("FAKE_EXPECT_KEY");
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    evhttp_set_gencb(http, handle, NULL);
    evhttp_set_max_body_size(http, 8 << 20);
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    if (!bound) {
        fprintf(stderr, "fake_frontier: cannot listen\n");
        return 1;
    }
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sa, &sl);
    printf("listening on 127.0.0.1:%d\n", ntohs(sa.sin_port));
    fflush(stdout);
    event_base_dispatch(base);
    evhttp_free(http);
    event_base_free(base);
    return 0;
}
