/* cmd_calibrate.c: `junction calibrate`: fit a head on labelled traffic.
 *
 * Why: a head is only as good as its fit to the traffic it routes, so the
 * operator fits one on their own labelled lines. Feature extraction (the
 * model's pass over every prompt) is the slow part and fitting the fast one,
 * so the features are cached next to the output, keyed by the data, the
 * model, the layer and the config (detector rules, chat template): trying
 * other feature groups or n-gram sizes refits in seconds. The model's
 * features are those the daemon computes for the same request (cmd_route.c,
 * gw_prompt_render), so a head fitted here scores alike there. The report
 * is computed on a held-out split the head never saw.
 */
#include "cli.h"
#include "commands.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* 3: the model's features read the prompt as the daemon renders it for the
 * local model (chat template), no longer the user's text alone */
#define CACHE_MAGIC "JNCFEAT3"

static void usage(void)
{
    printf("usage: junction calibrate [-m MODEL] --data FILE.jsonl --target difficulty|sensitivity -o HEAD.json\n\n"
           "Fit a head on labelled lines and write it. Lines:\n"
           "  difficulty:  {\"prompt\"|\"messages\": ..., \"local_correct\": 0|1, \"frontier_correct\": 0|1}\n"
           "               (positive: the frontier answers and the local model does not)\n"
           "  sensitivity: {\"text\"|\"prompt\"|\"messages\": ..., \"sensitive\": 0|1}\n"
           "A share of the lines (by a hash of the prompt) is held out: accuracy, ROC AUC,\n"
           "a calibration table and, for difficulty, APGR and CPT are measured on it.\n"
           "Features are cached in HEAD.json.features.bin, so refitting is instant.\n\n"
           "  --features LIST     groups: lexical,ngrams,detectors,model,hidden (default\n"
           "                      lexical,ngrams,detectors, plus model with -m)\n"
           "  --layer N           layer whose hidden state the hidden group pools\n"
           "                      (default n_layer/4)\n"
           "  --max-tokens N      prompt tokens the model scores (head and tail; 512)\n"
           "  --ngram-bits N      hashed n-gram buckets = 2^N (10..22; default 16)\n"
           "  --holdout X         share held out for the report (default 0.2)\n"
           "  --lambda X          L2 strength (default: the best on a validation split)\n"
           "  --config FILE       daemon config: the operator's detectors, classifier.max_tokens\n"
           "                      and the chat_template the model's pass renders prompts with\n"
           "  --description TEXT  written into the head\n"
           "  --no-cache          extract features again\n" CLI_ENGINE_HELP);
}

static uint64_t fnv64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}
#define FNV64_START 14695981039346656037ULL

/* ---- the labelled data ---- */

typedef struct {
    cls_example *ex;
    int n;
} dataset;

static void dataset_free(dataset *d)
{
    for (int i = 0; i < d->n; i++) cli_features_free(&d->ex[i].features);
    free(d->ex);
}

static int label_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1) ? (int)v->valuedouble : -1;
}

static void progress(int done, int total, double started)
{
    double el = (double)time(NULL) - started, eta = done ? el * (total - done) / done : 0;
    int bar = total ? 30 * done / total : 30;
    fprintf(stderr, "\rfeatures %d/%d [%.*s%*s] %3.0f%%  ETA %dm%02ds ", done, total, bar,
            "==============================", 30 - bar, "", total ? 100.0 * done / total : 100.0, (int)eta / 60,
            (int)eta % 60);
    if (done == total) fputc('\n', stderr);
}

/* Parse every line (labels, split key) and, unless `features` is false,
 * extract its features. */
static int read_data(const char *path, const char *text, const char *target, const cli_classifier *c,
                     bool features, dataset *d)
{
    int lines = 1;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    d->ex = calloc((size_t)lines, sizeof(*d->ex));
    if (!d->ex) {
        fprintf(stderr, "junction calibrate: out of memory for %d lines\n", lines);
        return -1;
    }
    bool tty = features && isatty(STDERR_FILENO);
    double started = (double)time(NULL);
    int lineno = 0, rc = 0;
    for (const char *p = text; *p && rc == 0;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        lineno++;
        char err[600] = "";
        if (strspn(p, " \t\r") < len) {
            cJSON *o = cJSON_ParseWithLength(p, len);
            cls_example *e = &d->ex[d->n];
            cli_request r;
            cls_findings fi;
            e->local_correct = label_of(o, "local_correct");
            e->frontier_correct = label_of(o, "frontier_correct");
            bool difficulty = !strcmp(target, "difficulty");
            e->label = difficulty ? e->frontier_correct == 1 && e->local_correct == 0 : label_of(o, "sensitive");
            if (!cJSON_IsObject(o)) snprintf(err, sizeof(err), "not a JSON object");
            else if (difficulty && (e->local_correct < 0 || e->frontier_correct < 0))
                snprintf(err, sizeof(err), "needs \"local_correct\" and \"frontier_correct\" (0 or 1)");
            else if (e->label < 0) snprintf(err, sizeof(err), "needs \"sensitive\" (0 or 1)");
            else if (cli_request_from_json(o, &r, err, sizeof(err)) == 0) {
                e->key = fnv64(FNV64_START, r.text, r.len);
                if (features && cli_classify(c, &r, &e->features, &fi, NULL, err, sizeof(err)) == 0)
                    cls_findings_free(&fi);
                else if (features) rc = -1;
                cli_request_free(&r);
                if (rc == 0) d->n++;
            } else {
                rc = -1;
            }
            if (*err) rc = -1;
            cJSON_Delete(o);
            if (tty && (d->n % 64 == 0)) progress(lineno, lines, started);
        }
        if (rc) fprintf(stderr, "%sjunction calibrate: %s:%d: %s\n", tty ? "\n" : "", path, lineno, err);
        p = end ? end + 1 : p + len;
    }
    if (tty && rc == 0) progress(lines, lines, started);
    if (rc == 0 && d->n == 0) {
        fprintf(stderr, "junction calibrate: %s has no labelled lines\n", path);
        rc = -1;
    }
    return rc;
}

/* ---- the feature cache ---- */

static bool put(FILE *fp, const void *p, size_t n) { return fwrite(p, 1, n, fp) == n; }
static bool get(FILE *fp, void *p, size_t n) { return fread(p, 1, n, fp) == n; }

static void cache_save(const char *path, uint64_t key, const dataset *d)
{
    FILE *fp = fopen(path, "wb");
    bool ok = fp && put(fp, CACHE_MAGIC, 8) && put(fp, &key, sizeof(key)) && put(fp, &d->n, sizeof(d->n));
    for (int i = 0; ok && i < d->n; i++) {
        const cls_features *f = &d->ex[i].features;
        const cls_model_features *m = &f->model;
        ok = put(fp, f->lex, sizeof(f->lex)) && put(fp, &f->n_det, sizeof(int)) &&
             put(fp, f->det, sizeof(f->det[0]) * (size_t)f->n_det) && put(fp, m, sizeof(*m)) &&
             put(fp, m->hidden ? m->hidden : f->lex, sizeof(float) * (size_t)(m->hidden ? m->n_hidden : 0)) &&
             put(fp, &f->n_ngrams, sizeof(int));
        for (int k = 0; ok && k < f->n_ngrams; k++) ok = put(fp, &f->ngrams[k].hash, sizeof(uint32_t));
    }
    if (fp) ok = fclose(fp) == 0 && ok;
    if (!ok) {
        fprintf(stderr, "junction calibrate: note: cannot write the feature cache %s (%s); the next run will "
                "extract again\n", path, strerror(errno));
        unlink(path);
    }
}

/* Features from the cache into d (whose lines are parsed). 0 on a hit. */
static int cache_load(const char *path, uint64_t key, dataset *d)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    char magic[8];
    uint64_t k;
    int n;
    bool ok = get(fp, magic, 8) && !memcmp(magic, CACHE_MAGIC, 8) && get(fp, &k, sizeof(k)) && k == key &&
              get(fp, &n, sizeof(n)) && n == d->n;
    for (int i = 0; ok && i < d->n; i++) {
        cls_features *f = &d->ex[i].features;
        cls_model_features *m = &f->model;
        ok = get(fp, f->lex, sizeof(f->lex)) && get(fp, &f->n_det, sizeof(int)) && f->n_det >= 0 &&
             f->n_det <= CLS_DET_MAX && get(fp, f->det, sizeof(f->det[0]) * (size_t)f->n_det) &&
             get(fp, m, sizeof(*m)) && m->n_hidden >= 0 && m->n_hidden <= 1 << 16;
        if (!ok) break;
        float *hidden = m->hidden && m->n_hidden ? malloc(sizeof(float) * (size_t)m->n_hidden) : NULL;
        m->hidden = hidden;
        ok = (!hidden || get(fp, hidden, sizeof(float) * (size_t)m->n_hidden)) && get(fp, &f->n_ngrams, sizeof(int)) &&
             f->n_ngrams >= 0 && f->n_ngrams <= 1 << 20;
        f->ngrams = ok ? calloc((size_t)f->n_ngrams + 1, sizeof(*f->ngrams)) : NULL;
        for (int j = 0; ok && f->ngrams && j < f->n_ngrams; j++) ok = get(fp, &f->ngrams[j].hash, sizeof(uint32_t));
        if (!f->ngrams) {
            f->n_ngrams = 0;
            ok = false;
        }
        if (m->n_hidden && !hidden) ok = false;
    }
    fclose(fp);
    if (!ok)
        for (int i = 0; i < d->n; i++) {
            cli_features_free(&d->ex[i].features);
            memset(&d->ex[i].features, 0, sizeof(d->ex[i].features));
        }
    return ok ? 0 : -1;
}

static uint64_t cache_key(const char *data, const char *model, const char *config, int layer, int max_tokens)
{
    char buf[512];
    struct stat st = {0};
    if (model) stat(model, &st);
    snprintf(buf, sizeof(buf), "%s|model=%s|size=%lld|mtime=%lld|layer=%d|max_tokens=%d", CACHE_MAGIC,
             model ? model : "", (long long)st.st_size, (long long)st.st_mtime, layer, max_tokens);
    uint64_t h = fnv64(FNV64_START, buf, strlen(buf));
    h = fnv64(h, data, strlen(data));
    if (config) {   /* its detector rules and chat_template change the features */
        FILE *fp = fopen(config, "rb");
        if (fp) {
            char chunk[4096];
            size_t n;
            while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) h = fnv64(h, chunk, n);
            fclose(fp);
        }
    }
    return h;
}

static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    size_t cap = 1 << 20, n = 0, got;
    char *buf = malloc(cap + 1);
    while (buf && (got = fread(buf + n, 1, cap - n, fp)) > 0) {
        n += got;
        char *bigger = n < cap ? buf : realloc(buf, (cap *= 2) + 1);
        if (!bigger) free(buf);
        buf = bigger;
    }
    fclose(fp);
    if (buf) buf[n] = 0;
    return buf;
}

/* ---- the command ---- */

typedef struct {
    const char *data, *target, *out, *features, *config, *description;
    double layer, max_tokens, ngram_bits, holdout, lambda;
    bool no_cache;
} calib_opts;

static int parse_args(int argc, char **argv, calib_opts *c, cli_engine_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = cli_engine_option("calibrate", argc, argv, &i, o);
        if (rc < 0) return 2;
        if (rc) continue;
        bool v = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 1;
        }
        const struct {
            const char *flag;
            const char **dst;
        } strings[] = {{"--data", &c->data}, {"--target", &c->target}, {"-o", &c->out}, {"--output", &c->out},
                       {"--features", &c->features}, {"--config", &c->config}, {"--description", &c->description}};
        const struct {
            const char *flag;
            double *dst, min, max;
        } numbers[] = {{"--layer", &c->layer, 1, 4096}, {"--max-tokens", &c->max_tokens, 8, 1 << 20},
                       {"--ngram-bits", &c->ngram_bits, 10, 22}, {"--holdout", &c->holdout, 0.01, 0.9},
                       {"--lambda", &c->lambda, 1e-9, 100}};
        bool done = false;
        for (size_t k = 0; !done && k < sizeof(strings) / sizeof(strings[0]); k++)
            if (!strcmp(a, strings[k].flag) && v) {
                *strings[k].dst = argv[++i];
                done = true;
            }
        for (size_t k = 0; !done && k < sizeof(numbers) / sizeof(numbers[0]); k++)
            if (!strcmp(a, numbers[k].flag)) {
                if (cli_number("calibrate", argc, argv, &i, numbers[k].min, numbers[k].max, numbers[k].dst)) return 2;
                done = true;
            }
        if (!done && !strcmp(a, "--no-cache")) done = c->no_cache = true;
        if (!done) {
            fprintf(stderr, "junction calibrate: unknown or incomplete option '%s'; see --help\n", a);
            return 2;
        }
    }
    if (!c->data || !c->target || !c->out) {
        fprintf(stderr, "junction calibrate: --data, --target and -o are required; see --help\n");
        return 2;
    }
    if (strcmp(c->target, "difficulty") && strcmp(c->target, "sensitivity")) {
        fprintf(stderr, "junction calibrate: --target must be difficulty or sensitivity, got '%s'\n", c->target);
        return 2;
    }
    return 0;
}

static void print_fit(const cls_fit_report *rep, const dataset *d, const cls_head *h, const char *target)
{
    printf("%d examples: %d training, %d validation, %d held out for this report\n", d->n, rep->n_train,
           rep->n_val, rep->n_test);
    printf("L2 strength on the validation split:\n  %-10s %10s %8s\n", "lambda", "log-loss", "AUC");
    for (int t = 0; t < rep->n_trials; t++)
        printf("  %-10g %10.4f %8.4f%s\n", rep->trials[t].lambda, rep->trials[t].val_logloss, rep->trials[t].val_auc,
               rep->trials[t].lambda == rep->lambda ? "  <- chosen" : "");
    int *lab = malloc(sizeof(int) * (size_t)(rep->n_test + 1)), *lok = malloc(sizeof(int) * (size_t)(rep->n_test + 1)),
        *fok = malloc(sizeof(int) * (size_t)(rep->n_test + 1));
    if (lab && lok && fok) {
        for (int r = 0; r < rep->n_test; r++) {
            const cls_example *e = &d->ex[rep->test_index[r]];
            lab[r] = e->label;
            lok[r] = e->local_correct;
            fok[r] = e->frontier_correct;
        }
        cls_routing routing;
        char err[300];
        bool routed = !strcmp(target, "difficulty") &&
                      cls_routing_metrics(rep->test_prob, lok, fok, rep->n_test, &routing, err, sizeof(err)) == 0;
        printf("held-out split:\n");
        cls_print_report(stdout, rep->test_prob, lab, rep->n_test, cls_head_get_info(h)->threshold,
                         routed ? &routing : NULL);
        if (routed) cls_routing_free(&routing);
    }
    free(lab);
    free(lok);
    free(fok);
}

int cmd_calibrate(int argc, char **argv)
{
    calib_opts a = {.holdout = 0.2};
    cli_engine_opts o;
    cli_engine_defaults(&o);
    int prc = parse_args(argc, argv, &a, &o);
    if (prc) return prc == 1 ? 0 : prc;
    char err[600];
    cls_fit_params p;
    cls_fit_defaults(&p);
    p.target = a.target;
    p.uses = CLS_USE_LEXICAL | CLS_USE_NGRAMS | CLS_USE_DETECTORS | (o.model ? CLS_USE_MODEL : 0);
    if (a.features && cls_feature_groups_parse(a.features, &p.uses, err, sizeof(err))) {
        fprintf(stderr, "junction calibrate: --features: %s\n", err);
        return 2;
    }
    if ((p.uses & (CLS_USE_MODEL | CLS_USE_HIDDEN)) && !o.model) {
        fprintf(stderr, "junction calibrate: the model and hidden feature groups need a model: give -m FILE\n");
        return 2;
    }
    if (a.ngram_bits) p.ngram_bits = (int)a.ngram_bits;
    p.test_share = a.holdout;
    p.lambdas = a.lambda > 0 ? &a.lambda : NULL;
    p.n_lambdas = a.lambda > 0 ? 1 : 0;
    p.force_from_detectors = !strcmp(a.target, "sensitivity");
    p.description = a.description;
    char *data = read_file(a.data);
    if (!data) {
        fprintf(stderr, "junction calibrate: cannot read %s: %s\n", a.data, strerror(errno));
        return 1;
    }
    cli_classifier c;
    if (cli_classifier_open(&c, "calibrate", a.config, &o)) {
        free(data);
        return 1;
    }
    if (a.max_tokens > 0) c.max_tokens = (int)a.max_tokens;
    if (p.uses & CLS_USE_HIDDEN) c.layer = a.layer > 0 ? (int)a.layer : cli_default_layer(&c);
    if (c.model && c.layer > eng_model_get_info(c.model)->n_layer) {
        fprintf(stderr, "junction calibrate: --layer %d: the model has %d layers\n", c.layer,
                eng_model_get_info(c.model)->n_layer);
        cli_classifier_close(&c);
        free(data);
        return 2;
    }
    char *cache = malloc(strlen(a.out) + 16);
    uint64_t key = cache_key(data, o.model, a.config, c.layer, c.max_tokens);
    dataset d = {0};
    int rc = 1;
    cls_head *h = NULL;
    cls_fit_report rep = {0};
    if (!cache) goto done;
    sprintf(cache, "%s.features.bin", a.out);
    if (read_data(a.data, data, a.target, &c, false, &d)) goto done;
    if (!a.no_cache && cache_load(cache, key, &d) == 0) {
        fprintf(stderr, "junction calibrate: features of %d lines from %s\n", d.n, cache);
    } else {
        dataset_free(&d);
        memset(&d, 0, sizeof(d));
        if (read_data(a.data, data, a.target, &c, true, &d)) goto done;
        cache_save(cache, key, &d);
    }
    if (cls_fit(d.ex, d.n, &p, &h, &rep, err, sizeof(err))) {
        fprintf(stderr, "junction calibrate: %s\n", err);
        goto done;
    }
    print_fit(&rep, &d, h, a.target);
    if (cls_head_save(h, a.out, err, sizeof(err))) {
        fprintf(stderr, "junction calibrate: %s\n", err);
        goto done;
    }
    printf("wrote %s (%d features carry weight)\n", a.out, rep.n_features_kept);
    rc = 0;
done:
    cls_fit_report_free(&rep);
    cls_head_free(h);
    dataset_free(&d);
    free(cache);
    free(data);
    cli_classifier_close(&c);
    return rc;
}
