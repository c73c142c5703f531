/* access_log.c: the access log, buffered like nginx's `access_log ... buffer=`.
 *
 * One line per request would otherwise cost the event loop a write(2) per
 * request (about a fifth of forwarding throughput in one harness). Lines
 * collect in a 64 KiB buffer written when full, at least once a second by
 * a timer, and at exit. On stderr ("-") lines go out at once instead, so
 * that they keep their order with the diagnostic log beside them.
 * Loop thread only.
 */
#include "internal.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ACCESS_LOG_BUFFER (64 * 1024)

struct gw_access_log {
    int fd;
    bool owned, buffered;
    struct event *timer;
    size_t len;
    char buf[ACCESS_LOG_BUFFER];
};

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* a full disk loses log lines, never requests */
        p += w;
        n -= (size_t)w;
    }
}

static void flush(gw_access_log *log)
{
    write_all(log->fd, log->buf, log->len);
    log->len = 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush(arg);
}

int gw_access_log_open(gw_access_log **out, struct event_base *base, const char *where, char *err, size_t errlen)
{
    gw_access_log *log = calloc(1, sizeof(*log));
    if (!log) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (strcmp(where, "-") == 0) {
        log->fd = STDERR_FILENO;
    } else {
        log->fd = open(where, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (log->fd < 0) {
            snprintf(err, errlen, "cannot open access log %s: %s", where, strerror(errno));
            free(log);
            return -1;
        }
        log->owned = log->buffered = true;
        struct timeval second = {1, 0};
        log->timer = event_new(base, -1, EV_PERSIST, on_timer, log);
        if (!log->timer || event_add(log->timer, &second) != 0) {
            snprintf(err, errlen, "cannot start the access log's flush timer");
            gw_access_log_close(log);
            return -1;
        }
    }
    *out = log;
    return 0;
}

void gw_access_log_write(gw_access_log *log, const char *line, size_t len)
{
    if (!log->buffered) {
        write_all(log->fd, line, len);
        return;
    }
    if (log->len + len > sizeof(log->buf)) flush(log);
    if (len > sizeof(log->buf)) {
        write_all(log->fd, line, len);
        return;
    }
    memcpy(log->buf + log->len, line, len);
    log->len += len;
}

void gw_access_log_close(gw_access_log *log)
{
    if (!log) return;
    flush(log);
    if (log->timer) event_free(log->timer);
    if (log->owned) close(log->fd);
    free(log);
}
