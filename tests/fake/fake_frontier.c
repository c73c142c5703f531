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
 * With FAKE_EXPECT_KEY set, a request carrying another key gets 401, with
 * the key it sent echoed in the message (as real APIs partly do).
 * Every request, and every connection the client closes while waiting, is
 * appended as a JSON line to the --record file.
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
    cJSON_AddStringToObject(e, "type", status == 429 ? "rate_limit_error" : status == 401 ? "authentication_error" : "api_error");
    cJSON_AddStringToObject(e, "message", message);
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

/* One step of a streamed answer; re-arms itself until the end. */
static void stream_step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    answer *a = arg;
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
        a->next++;
    } else {
        if (a->anthropic) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "type", "message_delta");
            cJSON_AddStringToObject(cJSON_AddObjectToObject(d, "delta"), "stop_reason", "end_turn");
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
        cJSON_AddStringToObject(root, "stop_reason", "end_turn");
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
        cJSON_AddStringToObject(ch, "finish_reason", "stop");
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

static const char *last_user_text(const cJSON *body)
{
    const char *t = "";
    const cJSON *msgs = cJSON_GetObjectItem(body, "messages");
    for (const cJSON *m = msgs ? msgs->child : NULL; m; m = m->next) {
        const cJSON *c = cJSON_GetObjectItem(m, "content");
        const cJSON *r = cJSON_GetObjectItem(m, "role");
        if (cJSON_IsString(c) && cJSON_IsString(r) && !strcmp(r->valuestring, "user")) t = c->valuestring;
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
    const char *text = last_user_text(body);
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
        for (int i = 0; i < 640; i++) evbuffer_add(b, chunk, sizeof(chunk));
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
    a->words = calloc(256, sizeof(char *));
    for (char *tok = strtok(full, " \n\t"); tok && a->n_words < 256; tok = strtok(NULL, " \n\t"))
        a->words[a->n_words++] = strdup(tok);
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
