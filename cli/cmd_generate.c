/* cmd_generate.c: `junction generate`: run the local engine on a prompt,
 * streaming the text as it is produced, then print why it stopped (as the
 * API's finish_reason: stop or length) and the timings. A full context ends
 * the generation like -n does, with "length"; it is not an error. */
#include "cli.h"
#include "commands.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_STOPS ENG_TEXTSTOP_MAX

static void usage(void)
{
    printf("usage: junction generate -m MODEL -p PROMPT [-n N] [options]\n\n"
           "Generate text from PROMPT with the local engine, streaming it to stdout;\n"
           "timings go to stderr.\n\n"
           "  -p, --prompt TEXT      the prompt (BOS is added)\n"
           "  -n, --n-predict N      tokens to generate at most (default 128)\n"
           "  --temp X               temperature; 0 = greedy (default 0.8)\n"
           "  --top-k N              keep the N most likely tokens (default 40; 0 = off)\n"
           "  --top-p X              nucleus sampling (default 0.95; 1 = off)\n"
           "  --min-p X              drop tokens below X times the best's probability (default 0.05)\n"
           "  --repeat-penalty X     penalize recent tokens (default 1 = off)\n"
           "  --frequency-penalty X  subtract X per earlier occurrence (default 0)\n"
           "  --presence-penalty X   subtract X once for any earlier occurrence (default 0)\n"
           "  --repeat-last-n N      tokens the penalties look back on (default 64)\n"
           "  --seed N               random seed, for reproducible sampling\n"
           "  --stop TEXT            stop when TEXT is produced (up to %d times)\n"
           "  --ignore-eos           keep going after the end-of-sequence token\n"
           CLI_ENGINE_HELP, MAX_STOPS);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cmd_generate(int argc, char **argv)
{
    cli_engine_opts o;
    cli_engine_defaults(&o);
    eng_sampling sp;
    eng_sampling_defaults(&sp);
    const char *prompt = NULL;
    int n_predict = 128;
    bool ignore_eos = false;
    const char *stops[MAX_STOPS];
    int n_stops = 0;
    eng_textstop out = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double x;
        int rc = cli_engine_option("generate", argc, argv, &i, &o);
        if (rc < 0) return 2;
        if (rc) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(); return 0; }
        else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && i + 1 < argc) prompt = argv[++i];
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) { if (cli_number("generate", argc, argv, &i, 0, 1 << 24, &x)) return 2; n_predict = (int)x; }
        else if (!strcmp(a, "--temp")) { if (cli_number("generate", argc, argv, &i, 0, 100, &x)) return 2; sp.temperature = (float)x; }
        else if (!strcmp(a, "--top-k")) { if (cli_number("generate", argc, argv, &i, 0, 1 << 20, &x)) return 2; sp.top_k = (int)x; }
        else if (!strcmp(a, "--top-p")) { if (cli_number("generate", argc, argv, &i, 0, 1, &x)) return 2; sp.top_p = (float)x; }
        else if (!strcmp(a, "--min-p")) { if (cli_number("generate", argc, argv, &i, 0, 1, &x)) return 2; sp.min_p = (float)x; }
        else if (!strcmp(a, "--repeat-penalty")) { if (cli_number("generate", argc, argv, &i, 0.01, 100, &x)) return 2; sp.repeat_penalty = (float)x; }
        else if (!strcmp(a, "--frequency-penalty")) { if (cli_number("generate", argc, argv, &i, -2, 2, &x)) return 2; sp.frequency_penalty = (float)x; }
        else if (!strcmp(a, "--presence-penalty")) { if (cli_number("generate", argc, argv, &i, -2, 2, &x)) return 2; sp.presence_penalty = (float)x; }
        else if (!strcmp(a, "--repeat-last-n")) { if (cli_number("generate", argc, argv, &i, 0, 1 << 20, &x)) return 2; sp.penalty_last_n = (int)x; }
        else if (!strcmp(a, "--seed")) { if (cli_number("generate", argc, argv, &i, 0, 9007199254740991.0, &x)) return 2; sp.seed = (uint64_t)x; }
        else if (!strcmp(a, "--stop") && i + 1 < argc) {
            if (n_stops == MAX_STOPS) {
                fprintf(stderr, "junction generate: at most %d --stop strings\n", MAX_STOPS);
                return 2;
            }
            stops[n_stops++] = argv[++i];
        }
        else if (!strcmp(a, "--ignore-eos")) ignore_eos = true;
        else {
            fprintf(stderr, "junction generate: unknown or incomplete option '%s'; see --help\n", a);
            return 2;
        }
    }
    if (!prompt) {
        fprintf(stderr, "junction generate: no prompt given; use -p TEXT\n");
        return 2;
    }
    eng_model *m;
    eng_ctx *c;
    if (eng_textstop_init(&out, stops, n_stops) != 0) {
        fprintf(stderr, "junction generate: out of memory\n");
        return 1;
    }
    int loaded = cli_load("generate", &o, &m, &c);
    if (loaded != 0) {
        eng_textstop_free(&out);
        return loaded;
    }
    int rc = 1;
    eng_sampler *smp = NULL;
    int n = eng_tokenize(m, prompt, strlen(prompt), true, NULL, 0);
    int *ids = n > 0 ? malloc(sizeof(int) * (size_t)n) : NULL;
    if (!ids || eng_sampler_new(&smp, m, &sp) != 0) {
        fprintf(stderr, "junction generate: out of memory\n");
        goto done;
    }
    eng_tokenize(m, prompt, strlen(prompt), true, ids, n);
    for (int i = 0; i < n; i++) eng_sampler_accept(smp, ids[i]);
    /* the context's positions, as eng_ctx_new sizes it */
    int n_ctx = o.ctx.n_ctx > 0 ? o.ctx.n_ctx : eng_model_get_info(m)->n_ctx_train;
    if (n > n_ctx) {
        fprintf(stderr, "junction generate: the prompt is %d tokens and the context holds %d; shorten it, "
                        "or give a larger -c\n", n, n_ctx);
        rc = 2;
        goto done;
    }

    char err[512];
    fwrite(prompt, 1, strlen(prompt), stdout);
    fflush(stdout);
    double t0 = now_s();
    if (eng_decode(c, ids, n, false, err, sizeof(err)) != 0) {
        fprintf(stderr, "\njunction generate: %s\n", err);
        goto done;
    }
    double t1 = now_s();
    int produced = 0;
    const char *finish = "length", *why = n_predict > 0 ? " (-n tokens generated)" : "";
    const float *logits = eng_get_logits(c, n - 1);
    while (produced < n_predict) {
        int tok = eng_sampler_sample(smp, logits);
        produced++;
        if (tok == eng_token_eos(m) && !ignore_eos) {
            finish = "stop", why = " (end of sequence)";
            break;
        }
        char piece[256];
        int len = eng_token_to_piece(m, tok, piece, sizeof(piece));
        const char *show;
        size_t show_len;
        bool stop = eng_textstop_add(&out, piece, (size_t)(len < 256 ? len : 256), &show, &show_len);
        fwrite(show, 1, show_len, stdout);
        fflush(stdout);
        if (stop) {
            finish = "stop", why = " (a --stop string)";
            break;
        }
        if (produced == n_predict) break;
        if (eng_ctx_pos(c) >= n_ctx) {
            why = " (the context is full; a larger -c holds more)";
            break;
        }
        if (eng_decode(c, &tok, 1, false, err, sizeof(err)) != 0) {
            fprintf(stderr, "\njunction generate: %s\n", err);
            goto done;
        }
        logits = eng_get_logits(c, 0);
    }
    const char *rest;
    size_t rest_len;
    eng_textstop_flush(&out, &rest, &rest_len);
    fwrite(rest, 1, rest_len, stdout);
    double t2 = now_s();
    printf("\n");
    fprintf(stderr, "\nfinish: %s%s", finish, why);
    fprintf(stderr, "\nprompt: %d tokens in %.1f ms (%.2f tok/s)\ngeneration: %d tokens in %.1f ms (%.2f tok/s)\n",
            n, (t1 - t0) * 1e3, n / (t1 - t0), produced, (t2 - t1) * 1e3, produced / (t2 - t1));
    rc = 0;
done:
    eng_textstop_free(&out);
    free(ids);
    eng_sampler_free(smp);
    eng_ctx_free(c);
    eng_model_free(m);
    return rc;
}
