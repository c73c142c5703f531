/* metrics.c: how good a head is: ROC AUC, calibration, and routing quality.
 *
 * Why: a difficulty head is only worth what it recovers of the quality gap
 * between the local model and the frontier per frontier call, so it is
 * judged as the routing literature does (RouteLLM): send the highest scores
 * to the frontier; at each share of frontier calls, PGR = (quality -
 * local-only) / (frontier-only - local-only); APGR is the area under PGR over
 * the share (random routing: 0.5); CPT(x) the least share reaching PGR x.
 * Equal scores cannot be told apart by a threshold, so a tie group is routed
 * together and the curve is a straight line across it (the expectation over
 * orders within the group): a constant score is exactly random routing.
 */
#include "scoring.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float s;
    int i;
} ranked;

/* NaN sorts below every number; ties by index, so the order is total. */
static int ascending(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    bool xn = isnan(x->s), yn = isnan(y->s);
    if (xn != yn) return xn ? -1 : 1;
    if (!xn && x->s != y->s) return x->s < y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static bool same(float a, float b) { return a == b || (isnan(a) && isnan(b)); }

static ranked *sorted(const float *score, int n)
{
    ranked *r = malloc(sizeof(*r) * (size_t)(n > 0 ? n : 1));
    if (!r) return NULL;
    for (int i = 0; i < n; i++) r[i] = (ranked){score[i], i};
    qsort(r, (size_t)n, sizeof(*r), ascending);
    return r;
}

double cls_roc_auc(const float *score, const int *label, int n)
{
    ranked *r = sorted(score, n);
    if (!r) return NAN;
    double pos = 0, rank_sum = 0;
    for (int a = 0; a < n;) {
        int b = a;
        while (b < n && same(r[b].s, r[a].s)) b++;
        double mid = (a + 1 + b) / 2.0;   /* average of ranks a+1..b */
        for (int k = a; k < b; k++)
            if (label[r[k].i]) {
                pos++;
                rank_sum += mid;
            }
        a = b;
    }
    free(r);
    double neg = n - pos;
    if (pos == 0 || neg == 0) return NAN;
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

/* The share at which the piecewise-linear curve first reaches `x`. */
static double first_share(const cls_pgr_point *c, int n, double x)
{
    if (c[0].pgr >= x) return c[0].share;
    for (int j = 1; j < n; j++)
        if (c[j].pgr >= x) {
            double dp = c[j].pgr - c[j - 1].pgr;
            return c[j - 1].share + (x - c[j - 1].pgr) / dp * (c[j].share - c[j - 1].share);
        }
    return 1;
}

int cls_routing_metrics(const float *score, const int *local_ok, const int *frontier_ok, int n,
                        cls_routing *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (n <= 0) {
        snprintf(err, errlen, "no labelled examples to compute routing metrics on");
        return -1;
    }
    double L = 0, F = 0;
    for (int i = 0; i < n; i++) {
        L += local_ok[i] != 0;
        F += frontier_ok[i] != 0;
    }
    if (F == L) {
        snprintf(err, errlen, "local-only and frontier-only quality are equal (%.4f) on these %d examples: "
                 "PGR is undefined; use a set where the frontier model does better", L / n, n);
        return -1;
    }
    ranked *r = sorted(score, n);
    out->curve = malloc(sizeof(*out->curve) * (size_t)(n + 1));
    if (!r || !out->curve) {
        free(r);
        free(out->curve);
        out->curve = NULL;
        snprintf(err, errlen, "out of memory computing routing metrics for %d examples", n);
        return -1;
    }
    out->n = n;
    out->local_only = L / n;
    out->frontier_only = F / n;
    out->curve[0] = (cls_pgr_point){0, out->local_only, 0};
    out->n_curve = 1;
    double gain = 0;
    int k = 0;
    for (int b = n; b > 0;) {   /* highest scores first: from the end of the ascending order */
        int a = b - 1;
        while (a > 0 && same(r[a - 1].s, r[b - 1].s)) a--;
        for (int j = a; j < b; j++) gain += (frontier_ok[r[j].i] != 0) - (local_ok[r[j].i] != 0);
        k += b - a;
        out->curve[out->n_curve++] = (cls_pgr_point){(double)k / n, (L + gain) / n, gain / (F - L)};
        b = a;
    }
    free(r);
    for (int j = 1; j < out->n_curve; j++) {
        const cls_pgr_point *p = &out->curve[j - 1], *q = &out->curve[j];
        out->apgr += (q->share - p->share) * (p->pgr + q->pgr) / 2;
    }
    out->cpt50 = first_share(out->curve, out->n_curve, 0.5);
    out->cpt80 = first_share(out->curve, out->n_curve, 0.8);
    return 0;
}

void cls_routing_free(cls_routing *r)
{
    free(r->curve);
    r->curve = NULL;
    r->n_curve = 0;
}

double cls_calibration(const float *prob, const int *label, int n, cls_calib_bin *bins, int n_bins)
{
    memset(bins, 0, sizeof(*bins) * (size_t)n_bins);
    for (int i = 0; i < n; i++) {
        float p = isnan(prob[i]) ? 0 : prob[i] < 0 ? 0 : prob[i] > 1 ? 1 : prob[i];
        int b = (int)(p * n_bins);
        if (b >= n_bins) b = n_bins - 1;
        bins[b].count++;
        bins[b].mean_pred += p;
        bins[b].observed += label[i] != 0;
    }
    double ece = 0;
    for (int b = 0; b < n_bins; b++) {
        if (!bins[b].count) continue;
        bins[b].mean_pred /= bins[b].count;
        bins[b].observed /= bins[b].count;
        ece += (double)bins[b].count / n * fabs(bins[b].mean_pred - bins[b].observed);
    }
    return ece;
}

void cls_confusion_at(const float *prob, const int *label, int n, float threshold, cls_confusion *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < n; i++) {
        bool said = prob[i] >= threshold, truth = label[i] != 0;
        out->tp += said && truth;
        out->fp += said && !truth;
        out->fn += !said && truth;
        out->tn += !said && !truth;
    }
    out->precision = out->tp + out->fp ? (double)out->tp / (out->tp + out->fp) : NAN;
    out->recall = out->tp + out->fn ? (double)out->tp / (out->tp + out->fn) : NAN;
    out->accuracy = n ? (double)(out->tp + out->tn) / n : NAN;
}

/* PGR at `share`, on the piecewise-linear curve. */
static double pgr_at(const cls_routing *r, double share)
{
    for (int j = 1; j < r->n_curve; j++)
        if (r->curve[j].share >= share) {
            const cls_pgr_point *p = &r->curve[j - 1], *q = &r->curve[j];
            return p->pgr + (share - p->share) / (q->share - p->share) * (q->pgr - p->pgr);
        }
    return r->curve[r->n_curve - 1].pgr;
}

void cls_print_report(FILE *out, const float *prob, const int *label, int n, float threshold,
                      const cls_routing *routing)
{
    cls_confusion c;
    cls_confusion_at(prob, label, n, threshold, &c);
    int pos = c.tp + c.fn;
    fprintf(out, "examples %d (positive %d, %.1f%%)\n", n, pos, n ? 100.0 * pos / n : 0.0);
    fprintf(out, "accuracy at threshold %.2f: %.4f (majority class: %.4f)\n", (double)threshold, c.accuracy,
            n ? (double)(pos > n - pos ? pos : n - pos) / n : 0.0);
    fprintf(out, "precision %.4f  recall %.4f\n", c.precision, c.recall);
    fprintf(out, "ROC AUC %.4f\n", cls_roc_auc(prob, label, n));
    cls_calib_bin bins[10];
    double ece = cls_calibration(prob, label, n, bins, 10);
    fprintf(out, "calibration (expected calibration error %.4f):\n  %-11s %7s %9s %9s\n", ece, "predicted", "count",
            "mean", "observed");
    for (int b = 0; b < 10; b++)
        if (bins[b].count)
            fprintf(out, "  %.1f - %.1f   %7d %9.4f %9.4f\n", b / 10.0, (b + 1) / 10.0, bins[b].count,
                    bins[b].mean_pred, bins[b].observed);
    if (!routing) return;
    fprintf(out, "routing (highest difficulty to the frontier), %d examples:\n", routing->n);
    fprintf(out, "  local-only quality %.4f, frontier-only %.4f\n", routing->local_only, routing->frontier_only);
    fprintf(out, "  APGR %.4f (random 0.5)  CPT(50%%) %.1f%%  CPT(80%%) %.1f%%\n", routing->apgr,
            100 * routing->cpt50, 100 * routing->cpt80);
    fprintf(out, "  share of frontier calls:");
    for (int s = 1; s <= 9; s += 2) fprintf(out, " %5d%%", s * 10);
    fprintf(out, "\n  PGR:                    ");
    for (int s = 1; s <= 9; s += 2) fprintf(out, " %6.3f", pgr_at(routing, s / 10.0));
    fprintf(out, "\n");
}
