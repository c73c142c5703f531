/* log.c: the daemon's diagnostic log on stderr.
 *
 * One line per event: an RFC 3339 UTC timestamp, the level, the message.
 * Lines are written with a single fprintf so that lines from worker threads
 * never interleave. Request and response bodies are never logged.
 */
#include "gateway.h"
#include "internal.h"

#include <stdarg.h>
#include <time.h>

static gw_log_level log_level = GW_LOG_INFO;
static const char *const level_tags[] = {"error", "warn", "info", "debug"};

void gw_log_set_level(gw_log_level level) { log_level = level; }

void gw_format_time(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

void gw_log(gw_log_level level, const char *fmt, ...)
{
    if (level > log_level) return;
    char msg[1024], when[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gw_format_time(when, sizeof(when));
    fprintf(stderr, "%s %s %s\n", when, level_tags[level], msg);
}
