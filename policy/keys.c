/* keys.c: client keys: making them, checking them, and the daemon's view.
 *
 * A key is 256 random bits, so a keyed hash is all the storage needs: no
 * slow password hash, since nothing guessable is being protected. The file
 * holds HMAC-SHA256(pepper, key), the pepper being 32 random bytes made with
 * the table; a copied database alone does not let anyone test candidate
 * keys offline. The daemon loads an immutable snapshot (the active keys,
 * sorted by hash, and the tenants) and swaps it whole when the keys counter
 * moves; lookup hashes the presented key, finds the entry by binary search
 * and confirms it with CRYPTO_memcmp, so the comparison that decides does
 * not leak through timing.
 */
#include "ledger_store.h"
#include "policy.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* ---- secrets ---- */

static int random_bytes(unsigned char *buf, size_t n, char *err, size_t errlen)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            snprintf(err, errlen, "getrandom failed: %s; keys need the kernel's random source",
                     strerror(errno));
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

/* "jk-" + the 32 bytes in base64url without padding (43 characters). */
static void encode_secret(const unsigned char raw[32], char out[POL_KEY_SECRET_LEN + 1])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *p = out;
    *p++ = 'j', *p++ = 'k', *p++ = '-';
    uint32_t acc = 0;
    int bits = 0;
    for (int i = 0; i < 32; i++) {
        acc = (acc << 8) | raw[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            *p++ = alphabet[(acc >> bits) & 63];
        }
    }
    if (bits > 0) *p++ = alphabet[(acc << (6 - bits)) & 63];
    *p = '\0';
}

/* "key_" + 12 characters of RFC 4648 base32 in lower case (60 random bits). */
static int new_id(char out[24], char *err, size_t errlen)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char raw[12];
    if (random_bytes(raw, sizeof(raw), err, errlen) != 0) return -1;
    memcpy(out, "key_", 4);
    for (int i = 0; i < 12; i++) out[4 + i] = alphabet[raw[i] & 31];
    out[16] = '\0';
    return 0;
}

static int hash_key(const unsigned char pepper[POL_PEPPER_LEN], const char *key, size_t len,
                    unsigned char out[POL_KEY_HASH_LEN])
{
    unsigned int out_len = 0;
    if (!HMAC(EVP_sha256(), pepper, POL_PEPPER_LEN, (const unsigned char *)key, len, out, &out_len) ||
        out_len != POL_KEY_HASH_LEN)
        return -1;
    return 0;
}

/* A new secret and its hash under `pepper`. */
static int new_secret(const unsigned char pepper[POL_PEPPER_LEN], char secret[POL_KEY_SECRET_LEN + 1],
                      unsigned char hash[POL_KEY_HASH_LEN], char *err, size_t errlen)
{
    unsigned char raw[32];
    if (random_bytes(raw, sizeof(raw), err, errlen) != 0) return -1;
    encode_secret(raw, secret);
    OPENSSL_cleanse(raw, sizeof(raw));
    if (hash_key(pepper, secret, POL_KEY_SECRET_LEN, hash) != 0) {
        snprintf(err, errlen, "HMAC-SHA256 failed in libcrypto; check the OpenSSL installation");
        return -1;
    }
    return 0;
}

/* ---- what a key's fields may hold ---- */

static bool name_char(char c, bool space_ok)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-' || (space_ok && c == ' ');
}

/* 0..63 name characters (min_len 1 when required); ',' separates items when lists. */
static bool text_ok(const char *s, size_t min_len, size_t max_len, bool space_ok, bool list)
{
    size_t len = strnlen(s, max_len + 1);
    if (len < min_len || len > max_len) return false;
    for (size_t i = 0; i < len; i++) {
        if (list && s[i] == ',') {
            if (i == 0 || s[i + 1] == '\0' || s[i + 1] == ',') return false;
            continue;
        }
        if (!name_char(s[i], space_ok)) return false;
    }
    return true;
}

static int check_settings(const pol_key *k, char *err, size_t errlen)
{
    static const char *const what[] = {"rpm", "tpm", "daily budget (micro-USD)", "monthly budget (micro-USD)"};
    static const int64_t max[] = {INT64_C(1000000000000), INT64_C(1000000000000),
                                  INT64_C(1000000000000000), INT64_C(1000000000000000)};
    const int64_t values[] = {k->rpm, k->tpm, k->budget_daily_micro, k->budget_monthly_micro};
    if (!text_ok(k->tenant, 1, 63, false, false)) {
        snprintf(err, errlen, "tenant '%.63s': give 1 to 63 characters of A-Z a-z 0-9 . _ -", k->tenant);
        return -1;
    }
    if (!text_ok(k->name, 0, 63, true, false)) {
        snprintf(err, errlen, "name '%.63s': at most 63 characters of A-Z a-z 0-9 . _ - and space", k->name);
        return -1;
    }
    if (!text_ok(k->routes, 0, 255, false, true)) {
        snprintf(err, errlen, "routes '%.255s': a comma-separated list of route names (local, "
                 "or upstream names), no spaces; empty for all", k->routes);
        return -1;
    }
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        if (values[i] < 0 || values[i] > max[i]) {
            snprintf(err, errlen, "%s %lld is out of range: 0 (no limit) to %lld",
                     what[i], (long long)values[i], (long long)max[i]);
            return -1;
        }
    return 0;
}

/* ---- management ---- */

struct pol_keyadmin {
    pol_keydb *db;
    unsigned char pepper[POL_PEPPER_LEN];
};

int pol_keyadmin_open(pol_keyadmin **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    pol_keyadmin *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (pol_keydb_open(&a->db, path, true, err, errlen) != 0 ||
        pol_keydb_pepper(a->db, a->pepper, err, errlen) != 0) {
        pol_keyadmin_close(a);
        return -1;
    }
    *out = a;
    return 0;
}

void pol_keyadmin_close(pol_keyadmin *a)
{
    if (!a) return;
    pol_keydb_close(a->db);
    OPENSSL_cleanse(a->pepper, sizeof(a->pepper));
    free(a);
}

int pol_key_add(pol_keyadmin *a, const pol_key *settings, pol_key *created,
                char secret[POL_KEY_SECRET_LEN + 1], char *err, size_t errlen)
{
    if (check_settings(settings, err, errlen) != 0) return -1;
    pol_key k = *settings;
    k.created_ms = pol_now_ms();
    k.revoked_ms = k.rotated_ms = 0;
    unsigned char hash[POL_KEY_HASH_LEN];
    if (new_secret(a->pepper, secret, hash, err, errlen) != 0) return -1;
    /* 60-bit ids collide about never; draw again if one does */
    for (int attempt = 0; attempt < 8; attempt++) {
        bool duplicate = false;
        if (new_id(k.id, err, errlen) != 0) break;
        if (pol_keydb_key_insert(a->db, &k, hash, &duplicate, err, errlen) == 0) {
            *created = k;
            return 0;
        }
        if (!duplicate) break;
    }
    OPENSSL_cleanse(secret, POL_KEY_SECRET_LEN + 1);
    return -1;
}

int pol_key_revoke(pol_keyadmin *a, const char *id, char *err, size_t errlen)
{
    bool found;
    if (pol_keydb_key_revoke(a->db, id, pol_now_ms(), &found, err, errlen) != 0) return -1;
    if (!found) {
        snprintf(err, errlen, "no active key '%.64s': see `junction keys list` (it may be revoked already)", id);
        return -1;
    }
    return 0;
}

int pol_key_rotate(pol_keyadmin *a, const char *id, char secret[POL_KEY_SECRET_LEN + 1],
                   char *err, size_t errlen)
{
    unsigned char hash[POL_KEY_HASH_LEN];
    if (new_secret(a->pepper, secret, hash, err, errlen) != 0) return -1;
    bool found;
    int rc = pol_keydb_key_rehash(a->db, id, hash, pol_now_ms(), &found, err, errlen);
    if (rc == 0 && !found) {
        snprintf(err, errlen, "no active key '%.64s': see `junction keys list` (a revoked key cannot "
                 "be rotated: add a new one)", id);
        rc = -1;
    }
    if (rc != 0) OPENSSL_cleanse(secret, POL_KEY_SECRET_LEN + 1);
    return rc;
}

int pol_key_list(pol_keyadmin *a, pol_key **keys, size_t *n, char *err, size_t errlen)
{
    return pol_keydb_keys(a->db, false, keys, NULL, n, err, errlen);
}

int pol_tenant_set(pol_keyadmin *a, const char *name, int64_t daily_micro, int64_t monthly_micro,
                   char *err, size_t errlen)
{
    if (!text_ok(name, 1, 63, false, false)) {
        snprintf(err, errlen, "tenant '%.63s': give 1 to 63 characters of A-Z a-z 0-9 . _ -", name);
        return -1;
    }
    if (daily_micro > INT64_C(1000000000000000) || monthly_micro > INT64_C(1000000000000000)) {
        snprintf(err, errlen, "tenant budget out of range: at most 10^15 micro-dollars");
        return -1;
    }
    return pol_keydb_tenant_set(a->db, name, daily_micro, monthly_micro, pol_now_ms(), err, errlen);
}

int pol_tenant_list(pol_keyadmin *a, pol_tenant **tenants, size_t *n, char *err, size_t errlen)
{
    return pol_keydb_tenants(a->db, tenants, n, err, errlen);
}

/* ---- JSON ---- */

/* name_usd (exact decimal) and name_micro_usd (integer), as the spend report writes money. */
static bool add_money(cJSON *o, const char *name, int64_t micro)
{
    char usd[48], raw[32], usd_name[64], micro_name[64];
    pol_usd_format(micro, usd, sizeof(usd));
    snprintf(raw, sizeof(raw), "%lld", (long long)micro);
    snprintf(usd_name, sizeof(usd_name), "%s_usd", name);
    snprintf(micro_name, sizeof(micro_name), "%s_micro_usd", name);
    return cJSON_AddRawToObject(o, usd_name, usd) && cJSON_AddRawToObject(o, micro_name, raw);
}

static bool add_time(cJSON *o, const char *name, int64_t ms)
{
    return ms ? cJSON_AddNumberToObject(o, name, (double)ms) != NULL : cJSON_AddNullToObject(o, name) != NULL;
}

cJSON *pol_key_json(const pol_key *k)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "id", k->id) && cJSON_AddStringToObject(o, "tenant", k->tenant) &&
              cJSON_AddStringToObject(o, "name", k->name) && cJSON_AddStringToObject(o, "routes", k->routes) &&
              cJSON_AddNumberToObject(o, "rpm", (double)k->rpm) && cJSON_AddNumberToObject(o, "tpm", (double)k->tpm) &&
              add_money(o, "budget_daily", k->budget_daily_micro) &&
              add_money(o, "budget_monthly", k->budget_monthly_micro) &&
              cJSON_AddBoolToObject(o, "admin", k->admin) && add_time(o, "created_ms", k->created_ms) &&
              add_time(o, "revoked_ms", k->revoked_ms) && add_time(o, "rotated_ms", k->rotated_ms);
    if (ok) return o;
    cJSON_Delete(o);
    return NULL;
}

cJSON *pol_tenant_json(const pol_tenant *t)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "name", t->name) &&
              add_money(o, "budget_daily", t->budget_daily_micro) &&
              add_money(o, "budget_monthly", t->budget_monthly_micro) && add_time(o, "created_ms", t->created_ms);
    if (ok) return o;
    cJSON_Delete(o);
    return NULL;
}

/* ---- the daemon's side ---- */

struct pol_keys {
    pol_keydb *db;
    int64_t data_version;           /* at the last look */
    int64_t keys_version;           /* of the last snapshot (or at open) */
};

typedef struct {
    unsigned char hash[POL_KEY_HASH_LEN];
    size_t key;                     /* index into keys */
} hash_entry;

struct pol_keys_snapshot {
    unsigned char pepper[POL_PEPPER_LEN];
    pol_key *keys;                  /* active ones */
    hash_entry *by_hash;            /* sorted by hash */
    size_t n_keys;
    pol_tenant *tenants;            /* sorted by name */
    size_t n_tenants;
};

int pol_keys_open(pol_keys **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    pol_keys *ks = calloc(1, sizeof(*ks));
    if (!ks) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (pol_keydb_open(&ks->db, path, false, err, errlen) != 0 ||
        pol_keydb_data_version(ks->db, &ks->data_version, err, errlen) != 0 ||
        pol_keydb_keys_version(ks->db, &ks->keys_version, err, errlen) != 0) {
        pol_keys_close(ks);
        return -1;
    }
    *out = ks;
    return 0;
}

void pol_keys_close(pol_keys *ks)
{
    if (!ks) return;
    pol_keydb_close(ks->db);
    free(ks);
}

int pol_keys_version(const char *path, int64_t *version, char *err, size_t errlen)
{
    pol_keydb *db;
    if (pol_keydb_open(&db, path, false, err, errlen) != 0) return -1;
    int rc = pol_keydb_keys_version(db, version, err, errlen);
    pol_keydb_close(db);
    return rc;
}

int pol_keys_changed(pol_keys *ks, bool *changed, char *err, size_t errlen)
{
    *changed = false;
    int64_t data_version, keys_version;
    if (pol_keydb_data_version(ks->db, &data_version, err, errlen) != 0) return -1;
    if (data_version == ks->data_version) return 0;
    if (pol_keydb_keys_version(ks->db, &keys_version, err, errlen) != 0) return -1;
    /* until a snapshot catches up, every call says so again */
    if (keys_version == ks->keys_version) ks->data_version = data_version;
    else *changed = true;
    return 0;
}

static int by_hash(const void *a, const void *b)
{
    return memcmp(((const hash_entry *)a)->hash, ((const hash_entry *)b)->hash, POL_KEY_HASH_LEN);
}

int pol_keys_snapshot_load(pol_keys *ks, pol_keys_snapshot **out, char *err, size_t errlen)
{
    *out = NULL;
    pol_keys_snapshot *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory for the keys");
        return -1;
    }
    unsigned char (*hashes)[POL_KEY_HASH_LEN] = NULL;
    int64_t version = 0;
    /* the counter first: a change made while we read is seen next time */
    int rc = pol_keydb_keys_version(ks->db, &version, err, errlen) == 0 &&
             pol_keydb_pepper(ks->db, s->pepper, err, errlen) == 0 &&
             pol_keydb_keys(ks->db, true, &s->keys, &hashes, &s->n_keys, err, errlen) == 0 &&
             pol_keydb_tenants(ks->db, &s->tenants, &s->n_tenants, err, errlen) == 0 ? 0 : -1;
    if (rc == 0 && s->n_keys > 0) {
        s->by_hash = calloc(s->n_keys, sizeof(*s->by_hash));
        if (!s->by_hash) {
            snprintf(err, errlen, "out of memory for %zu keys", s->n_keys);
            rc = -1;
        }
    }
    if (rc == 0) {
        for (size_t i = 0; i < s->n_keys; i++) {
            memcpy(s->by_hash[i].hash, hashes[i], POL_KEY_HASH_LEN);
            s->by_hash[i].key = i;
        }
        if (s->n_keys > 0) qsort(s->by_hash, s->n_keys, sizeof(*s->by_hash), by_hash);
        ks->keys_version = version;
        *out = s;
    } else {
        pol_keys_snapshot_free(s);
    }
    free(hashes);
    return rc;
}

void pol_keys_snapshot_free(pol_keys_snapshot *s)
{
    if (!s) return;
    OPENSSL_cleanse(s->pepper, sizeof(s->pepper));
    free(s->keys);
    free(s->by_hash);
    free(s->tenants);
    free(s);
}

size_t pol_keys_count(const pol_keys_snapshot *s)
{
    return s ? s->n_keys : 0;
}

const pol_key *pol_keys_lookup(const pol_keys_snapshot *s, const char *presented, size_t len)
{
    if (!s || s->n_keys == 0 || !presented || len > POL_KEY_PRESENTED_MAX) return NULL;
    hash_entry probe;
    if (hash_key(s->pepper, presented, len, probe.hash) != 0) return NULL;
    /* the search's ordering compares reveal only where an unknown hash sorts;
       the match itself is decided in constant time */
    size_t lo = 0, hi = s->n_keys;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (by_hash(&s->by_hash[mid], &probe) < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo == s->n_keys || CRYPTO_memcmp(s->by_hash[lo].hash, probe.hash, POL_KEY_HASH_LEN) != 0)
        return NULL;
    return &s->keys[s->by_hash[lo].key];
}

static int by_tenant_name(const void *name, const void *t)
{
    return strcmp((const char *)name, ((const pol_tenant *)t)->name);
}

const pol_tenant *pol_keys_tenant(const pol_keys_snapshot *s, const char *name)
{
    if (!s || !name || s->n_tenants == 0) return NULL;
    return bsearch(name, s->tenants, s->n_tenants, sizeof(*s->tenants), by_tenant_name);
}

bool pol_key_allows_route(const pol_key *k, const char *route)
{
    if (!k->routes[0]) return true;
    size_t len = strlen(route);
    for (const char *p = k->routes; *p; ) {
        const char *comma = strchr(p, ',');
        size_t item = comma ? (size_t)(comma - p) : strlen(p);
        if (item == len && memcmp(p, route, len) == 0) return true;
        if (!comma) break;
        p = comma + 1;
    }
    return false;
}
