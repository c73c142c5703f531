/* detect_ipv6.c: IPv6 addresses.
 *
 * Colons are everywhere in code and prose, so a candidate must parse as a
 * whole address (eight groups, or fewer around one "::") and look like one
 * (a group of three or more hex digits, or four groups): times (10:30:00),
 * MAC addresses (six groups), C++ scopes (std::) and slices (a[1::2]) do
 * not. Loopback, the unspecified address and the documentation prefix
 * 2001:db8::/32 are not reported.
 */
#include "detect_internal.h"

#include <string.h>

static bool v6_char(unsigned char c) { return det_is_hex(c) || c == ':' || c == '.'; }

/* Does t[a..b) parse as an IPv6 address that looks like one? */
static bool parse_v6(const char *t, size_t a, size_t b)
{
    int groups = 0, gaps = 0;
    bool long_group = false;
    size_t i = a;
    if (b - a >= 2 && t[a] == ':' && t[a + 1] == ':') {
        gaps = 1;
        i = a + 2;
    } else if (t[a] == ':') {
        return false;
    }
    while (i < b) {
        size_t g = i;
        while (i < b && det_is_hex((unsigned char)t[i])) i++;
        if (i < b && t[i] == '.') {   /* an IPv4 tail: ::ffff:10.1.2.3 */
            int dots = 0;
            for (size_t k = g; k < b; k++) {
                if (t[k] == '.') dots++;
                else if (!det_is_digit((unsigned char)t[k])) return false;
            }
            if (dots != 3) return false;
            groups += 2;
            long_group = true;
            i = b;
            break;
        }
        if (i - g == 0 || i - g > 4) return false;
        groups++;
        long_group = long_group || i - g >= 3;
        if (i == b) break;
        i++;   /* ':' */
        if (i < b && t[i] == ':') {
            if (gaps++) return false;
            i++;
            if (i == b) break;
        } else if (i == b) {
            return false;
        }
    }
    if (gaps ? groups > 7 : groups != 8) return false;
    return groups >= 2 && (long_group || groups >= 4);
}

void det_scan_ipv6(det_scan *s)
{
    const char *t = s->t;
    size_t from = 0;
    const char *p;
    while (from < s->n && !s->full && (p = memchr(t + from, ':', s->n - from)) != NULL) {
        size_t c = (size_t)(p - t);
        from = c + 1;
        bool before = c > 0 && det_is_hex((unsigned char)t[c - 1]);
        bool after = c + 1 < s->n && (det_is_hex((unsigned char)t[c + 1]) || t[c + 1] == ':');
        if (!(before || (c + 1 < s->n && t[c + 1] == ':')) || !after) continue;
        size_t a = c, b = c;
        while (a > 0 && c - a < 45 && (det_is_hex((unsigned char)t[a - 1]) || t[a - 1] == ':')) a--;
        while (b < s->n && b - a < 46 && v6_char((unsigned char)t[b])) b++;
        from = b > from ? b : from;
        if (a > 0 && (det_is_word((unsigned char)t[a - 1]) || t[a - 1] == '.')) continue;
        if (b < s->n && det_is_word((unsigned char)t[b])) continue;
        while (b > a && t[b - 1] == '.') b--;
        if (b - a >= 2 && t[b - 1] == ':' && t[b - 2] != ':') b--;
        if (b <= a || !parse_v6(t, a, b)) continue;
        if (det_starts_ci(t, b, a, "2001:db8:") || det_starts_ci(t, b, a, "2001:0db8:")) continue;
        bool link_local = det_starts_ci(t, b, a, "fe80:");
        bool ctx = det_context(s, LEX_CTX_IP, a, b, 48);
        det_add(s, CLS_IP_ADDRESS, a, b, link_local ? 0.7f : ctx ? 0.95f : 0.85f, false);
    }
}
