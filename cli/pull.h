/* pull.h: getting model files onto this machine. Internal to cli/.
 *
 * What a model reference names (a short alias, a Hugging Face file, a plain
 * URL), where the cache of pulled models lives, and the download itself:
 * resumable, retried, checked (size, SHA-256, GGUF structure) and renamed
 * into place only when every check passed. `junction pull` and
 * `junction models` are built on it.
 *
 * Functions that can fail return 0 on success and -1 on failure, with a
 * message for the user (what went wrong, what to do) in `err`.
 */
#ifndef JUNCTION_PULL_H
#define JUNCTION_PULL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- The alias table (model_aliases.c) ---- */

typedef struct {
    const char *name;   /* what users type, e.g. "llama-2-7b-chat:q4_0" */
    const char *ref;    /* what it stands for, e.g. "hf:OWNER/REPO/FILE.gguf" */
    uint64_t size;      /* bytes, as the hub lists the file */
    const char *about;  /* one line for `junction pull --help` */
} cli_model_alias;

/* The alias `script/server` pulls when it has no model. */
#define CLI_DEFAULT_MODEL "llama-2-7b-chat"

/* The table, in display order; *n gets its length. Static storage. */
const cli_model_alias *cli_model_aliases(int *n);
/* The alias called `name`, or NULL. */
const cli_model_alias *cli_model_alias_find(const char *name);

/* ---- References and the cache (pull.c) ---- */

#define CLI_URL_MAX 4096

typedef struct {
    char url[CLI_URL_MAX];        /* what to GET */
    char file_name[256];          /* the file's name in the cache */
    bool hub;                     /* a Hugging Face file: the fields below are set */
    char hf_endpoint[1024];       /* HF_ENDPOINT, default https://huggingface.co */
    char hf_repo[256];            /* "OWNER/REPO" */
    char hf_file[1024];           /* path inside the repository */
    char hf_revision[256];        /* branch, tag or commit; default "main" */
    const cli_model_alias *alias; /* set when the reference was an alias */
} cli_model_ref;

/* Parse `ref`: an alias, `hf:OWNER/REPO/FILE[@REVISION]` or an http(s):// URL.
 * Reads HF_ENDPOINT from the environment. */
int cli_model_ref_parse(const char *ref, cli_model_ref *out, char *err, size_t errlen);

/* The models cache folder: ${XDG_CACHE_HOME:-$HOME/.cache}/junction/models.
 * With `create`, the folder (and its parents) are made when missing. */
int cli_models_dir(char *out, size_t len, bool create, char *err, size_t errlen);

/* Human-readable byte counts ("3.8 GiB"), into buf; returns buf. */
const char *cli_format_bytes(uint64_t n, char *buf, size_t len);

/* ---- The download (pull.c) ---- */

typedef struct {
    const char *sha256;  /* expected SHA-256 (hex), or NULL: the hub's X-Linked-Etag if it sends one */
    const char *token;   /* bearer token for the hub (HF_TOKEN), or NULL; never sent elsewhere */
    int max_retries;     /* further attempts after a transient failure, each resuming */
    FILE *log;           /* progress and notes, e.g. stderr */
    bool bar;            /* a redrawn progress bar (a terminal); else a plain line every few seconds */
} cli_pull_opts;

/* Download `ref` to `dest`: the bytes go to `dest`.part first (continued
 * with a Range request if a previous pull left it there), are hashed as they
 * arrive, checked against the expected size and SHA-256 and validated as
 * GGUF; then the part file is renamed to `dest`. A failed check deletes the
 * part file; an interrupted transfer keeps it for the next pull. */
int cli_pull(const cli_model_ref *ref, const char *dest, const cli_pull_opts *o, char *err, size_t errlen);

/* ---- What the server answers (pull.c) ----
 * Pure functions of the bytes a server sent, so that the fuzz targets
 * (tests/fuzz/fuzz_pull_headers.c, fuzz_hub_listing.c) reach them without
 * a network; cli_pull calls them on every transfer. */

/* What the response headers said. A status line starts a new response
 * (after a redirect): it clears has_length and has_range; X-Linked-Size and
 * X-Linked-Etag, which the hub sends on its redirect, are kept. */
typedef struct {
    long status;                 /* the last status line's code; 0 before one */
    bool has_length, has_range;
    uint64_t content_length;     /* Content-Length */
    uint64_t range_start;        /* Content-Range: bytes START-END/TOTAL */
    uint64_t range_total;
    uint64_t linked_size;        /* X-Linked-Size: the whole file, 0 when not sent */
    char linked_etag[80];        /* X-Linked-Etag without quotes or W/ (a SHA-256 for LFS files) */
} cli_pull_headers;

/* Read one header line as libcurl hands it: `n` bytes, its line end
 * included, not NUL-terminated. Lines it does not know change nothing. */
void cli_pull_header(cli_pull_headers *h, const char *line, size_t n);

/* What a 2xx answer's body does to a part file that holds `have` bytes. */
typedef enum {
    CLI_BODY_APPEND,      /* the body continues the part (or the part is empty) */
    CLI_BODY_START_OVER,  /* the body is the whole file: empty the part first */
    CLI_BODY_MISMATCH,    /* the answer does not fit the part: start over with a new request */
} cli_body_plan;

/* The plan, and in *total the whole file's size the answer implies (0:
 * unknown, and always 0 for CLI_BODY_MISMATCH). */
cli_body_plan cli_pull_body_plan(const cli_pull_headers *h, uint64_t have, uint64_t *total);

/* The .gguf files named in the hub's repository listing (the JSON of
 * {endpoint}/api/models/OWNER/REPO, `n` bytes): "a.gguf, b.gguf" into `out`,
 * as many as fit. Returns how many, or -1 with `err` when the text is not a
 * listing. */
int cli_hub_gguf_files(const char *json, size_t n, char *out, size_t len, char *err, size_t errlen);

/* The start of an error answer's body (`n` bytes), fit to quote in a
 * message to the user, into `out` (`len` > 0 bytes). */
void cli_pull_error_text(const char *body, size_t n, char *out, size_t len);

/* ---- What a model file is (cmd_models.c) ---- */

typedef struct {
    char type[16];       /* weight type, e.g. "Q4_0", or "mixed" (Q4_K_M and the like) */
    uint64_t n_params;   /* parameters in the weight matrices, norms and embeddings */
    int n_ctx;           /* training context */
    char name[128];      /* general.name, or the file name */
} cli_model_facts;

/* Read `path` with the engine's loader (cheap: the weights stay on disk).
 * Fails, with the loader's reason, for files the engine cannot run. */
int cli_model_facts_read(const char *path, cli_model_facts *f, char *err, size_t errlen);

/* "6.7B", "15.2M", "292.6K" into buf; returns buf. */
const char *cli_format_count(uint64_t n, char *buf, size_t len);

#endif
