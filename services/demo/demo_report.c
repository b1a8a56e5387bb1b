/* demo_report.c -- oms-demo's figures: per kind of order, what was placed,
 * which verdicts came, which were not the expected one, which never came
 * within --timeout-s, and the latency from just before the POST to the
 * verdict's arrival; the table on stdout and the same in --json. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

#define DEMO_ROWS (DEMO_KINDS + 1) /* the kinds, then "all" */

typedef struct {
    size_t orders, placed, post_failed, not_sent;
    size_t completed, failed, failed_by[DEMO_REASONS];
    size_t unexpected, missing, late, duplicates;
    double *lat_ms; /* verdicts in time, sorted */
    size_t lat_n;
    double p50, p90, p99, max, mean;
} demo_row_t;

typedef struct {
    demo_row_t rows[DEMO_ROWS];
    int64_t last_verdict_ns;
    size_t verdicts_in_time;
    double placing_s, placed_per_s, e2e_s, e2e_per_s;
    bool ok;
} demo_figures_t;

static bool verdict_expected(const demo_order_t *o)
{
    switch (o->kind) {
    case DEMO_SUCCESS: return o->verdict == DEMO_V_COMPLETED;
    case DEMO_DECLINED: return o->verdict == DEMO_V_FAILED && o->reason == DEMO_R_PAYMENT_DECLINED;
    case DEMO_OOS: return o->verdict == DEMO_V_FAILED && o->reason == DEMO_R_OUT_OF_STOCK;
    case DEMO_SHIPFAIL: return o->verdict == DEMO_V_FAILED && o->reason == DEMO_R_SHIPPING_FAILED;
    default: return false;
    }
}

/* Counts order o into row r (its latency goes in when in time). */
static void row_add(demo_row_t *r, const demo_order_t *o, int64_t timeout_ns)
{
    r->orders++;
    if (o->state == DEMO_S_PENDING) {
        r->not_sent++;
        return;
    }
    if (o->state == DEMO_S_POST_FAILED) {
        r->post_failed++;
        return;
    }
    r->placed++;
    if (o->verdict == DEMO_V_NONE || o->verdict_ns - o->post_ns > timeout_ns) {
        r->missing++;
        r->late += o->verdict != DEMO_V_NONE;
        return;
    }
    if (o->verdict == DEMO_V_COMPLETED) {
        r->completed++;
    } else {
        r->failed++;
        r->failed_by[o->reason]++;
    }
    r->unexpected += !verdict_expected(o);
    r->duplicates += o->verdicts > 1;
    r->lat_ms[r->lat_n++] = (double)(o->verdict_ns - o->post_ns) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted v[0..n). */
static double percentile(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)ceil(p * (double)n);
    return v[rank > 0 ? rank - 1 : 0];
}

static void row_finish(demo_row_t *r)
{
    qsort(r->lat_ms, r->lat_n, sizeof *r->lat_ms, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < r->lat_n; i++)
        sum += r->lat_ms[i];
    r->mean = r->lat_n ? sum / (double)r->lat_n : 0;
    r->p50 = percentile(r->lat_ms, r->lat_n, 0.50);
    r->p90 = percentile(r->lat_ms, r->lat_n, 0.90);
    r->p99 = percentile(r->lat_ms, r->lat_n, 0.99);
    r->max = r->lat_n ? r->lat_ms[r->lat_n - 1] : 0;
}

static int figures_compute(const demo_report_in_t *in, demo_figures_t *f)
{
    memset(f, 0, sizeof *f);
    int64_t timeout_ns = (int64_t)in->cfg->timeout_s * 1000000000;
    for (int k = 0; k < DEMO_ROWS; k++) {
        f->rows[k].lat_ms = malloc((in->n ? in->n : 1) * sizeof(double));
        if (f->rows[k].lat_ms == NULL)
            return -ENOMEM;
    }
    for (size_t i = 0; i < in->n; i++) {
        const demo_order_t *o = &in->orders[i];
        row_add(&f->rows[o->kind], o, timeout_ns);
        row_add(&f->rows[DEMO_KINDS], o, timeout_ns);
        if (o->state == DEMO_S_PLACED && o->verdict != DEMO_V_NONE &&
            o->verdict_ns - o->post_ns <= timeout_ns && o->verdict_ns > f->last_verdict_ns)
            f->last_verdict_ns = o->verdict_ns;
    }
    for (int k = 0; k < DEMO_ROWS; k++)
        row_finish(&f->rows[k]);
    const demo_row_t *all = &f->rows[DEMO_KINDS];
    const demo_load_result_t *l = in->load;
    f->verdicts_in_time = all->lat_n;
    f->placing_s = l->placed > 0 ? (double)(l->last_posted_ns - l->first_post_ns) / 1e9 : 0;
    f->placed_per_s = f->placing_s > 0 ? (double)l->placed / f->placing_s : 0;
    f->e2e_s = f->last_verdict_ns ? (double)(f->last_verdict_ns - l->first_post_ns) / 1e9 : 0;
    f->e2e_per_s = f->e2e_s > 0 ? (double)f->verdicts_in_time / f->e2e_s : 0;
    f->ok = in->n > 0 && all->placed == in->n && all->missing == 0 && all->unexpected == 0 &&
            all->duplicates == 0 && in->watch.error == 0;
    return 0;
}

static void figures_free(demo_figures_t *f)
{
    for (int k = 0; k < DEMO_ROWS; k++)
        free(f->rows[k].lat_ms);
}

static const char *row_name(int k)
{
    return k < DEMO_KINDS ? demo_kind_name((demo_kind_t)k) : "all";
}

static void print_reasons(const demo_row_t *r)
{
    bool any = false;
    for (int x = 0; x < DEMO_REASONS; x++) {
        if (r->failed_by[x] > 0) {
            printf("%s%s=%zu", any ? " " : "", demo_reason_name((demo_reason_t)x), r->failed_by[x]);
            any = true;
        }
    }
    printf("%s\n", any ? "" : "-");
}

static void print_table(const demo_report_in_t *in, const demo_figures_t *f)
{
    printf("\n%-9s %8s %8s %9s %8s %10s %8s %9s %9s %9s %9s  %s\n", "kind", "orders", "placed",
           "completed", "failed", "unexpected", "missing", "p50 ms", "p90 ms", "p99 ms", "max ms",
           "failed by reason");
    for (int k = 0; k < DEMO_ROWS; k++) {
        const demo_row_t *r = &f->rows[k];
        if (k < DEMO_KINDS && r->orders == 0)
            continue;
        printf("%-9s %8zu %8zu %9zu %8zu %10zu %8zu %9.1f %9.1f %9.1f %9.1f  ", row_name(k),
               r->orders, r->placed, r->completed, r->failed, r->unexpected, r->missing, r->p50,
               r->p90, r->p99, r->max);
        print_reasons(r);
    }
    const demo_row_t *all = &f->rows[DEMO_KINDS];
    const demo_load_result_t *l = in->load;
    printf("\nplaced:     %zu orders in %.2f s = %.0f orders/s (%u connections, %llu retries",
           l->placed, f->placing_s, f->placed_per_s, in->cfg->concurrency,
           (unsigned long long)l->retries);
    printf("%s)\n", l->post_failed || l->not_sent ? ", some not placed: see below" : "");
    printf("end to end: %zu verdicts, first POST to last verdict %.2f s = %.0f orders/s\n",
           f->verdicts_in_time, f->e2e_s, f->e2e_per_s);
    if (l->post_failed || l->not_sent)
        printf("not placed: %zu refused or failed after %u tries, %zu not sent (stopped)\n",
               l->post_failed, DEMO_POST_ATTEMPTS_MAX, l->not_sent);
    if (all->late || all->duplicates || in->watch.foreign)
        printf("also:       %zu verdicts later than %u s, %zu orders with more than one verdict, "
               "%llu verdicts of other orders\n", all->late, in->cfg->timeout_s, all->duplicates,
               (unsigned long long)in->watch.foreign);
    for (size_t i = 0; i < in->watch.other_reason_count; i++)
        printf("%s\"%s\"%s", i == 0 ? "other:      OrderFailed reasons this demo does not know: " : ", ",
               in->watch.other_reasons[i], i + 1 == in->watch.other_reason_count ? "\n" : "");
    if (f->ok)
        printf("result:     OK: all %zu orders reached their expected verdict within %u s\n",
               in->n, in->cfg->timeout_s);
    else
        printf("result:     FAILED: not every order reached its expected verdict within %u s%s\n",
               in->cfg->timeout_s, in->watch.error ? " (the subscription to $ce-order ended)" : "");
}

static json_t *row_json(const demo_row_t *r)
{
    json_t *by = json_object();
    for (int x = 0; x < DEMO_REASONS; x++) {
        if (r->failed_by[x] > 0)
            json_object_set_new(by, demo_reason_name((demo_reason_t)x),
                                json_integer((json_int_t)r->failed_by[x]));
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I, "
                     "s:{s:f, s:f, s:f, s:f, s:f, s:I}}",
                     "orders", (json_int_t)r->orders, "placed", (json_int_t)r->placed,
                     "post_failed", (json_int_t)r->post_failed, "not_sent",
                     (json_int_t)r->not_sent, "completed", (json_int_t)r->completed, "failed",
                     (json_int_t)r->failed, "failed_by_reason", by, "unexpected",
                     (json_int_t)r->unexpected, "missing", (json_int_t)r->missing, "late",
                     (json_int_t)r->late, "duplicates", (json_int_t)r->duplicates,
                     "latency_ms", "p50", r->p50, "p90", r->p90, "p99", r->p99, "max", r->max,
                     "mean", r->mean, "count", (json_int_t)r->lat_n);
}

static int write_json(const demo_report_in_t *in, const demo_figures_t *f)
{
    const demo_config_t *c = in->cfg;
    json_t *kinds = json_object(), *mix = json_object();
    for (int k = 0; k < DEMO_KINDS; k++) {
        json_object_set_new(mix, row_name(k), json_integer(c->mix[k]));
        if (f->rows[k].orders > 0)
            json_object_set_new(kinds, row_name(k), row_json(&f->rows[k]));
    }
    json_t *root = json_pack(
        "{s:I, s:I, s:I, s:o, s:I, s:I, s:o, s:o, s:f, s:f, s:f, s:f, s:I, s:I, s:b}",
        "orders", (json_int_t)in->n, "concurrency", (json_int_t)c->concurrency, "rate",
        (json_int_t)c->rate, "mix", mix, "seed", (json_int_t)c->seed, "timeout_s",
        (json_int_t)c->timeout_s, "kinds", kinds, "all", row_json(&f->rows[DEMO_KINDS]),
        "placing_s", f->placing_s, "placed_per_s", f->placed_per_s,
        "first_post_to_last_verdict_s", f->e2e_s, "end_to_end_per_s", f->e2e_per_s, "retries",
        (json_int_t)in->load->retries, "foreign_verdicts", (json_int_t)in->watch.foreign, "ok",
        (int)f->ok);
    json_t *other = json_array();
    for (size_t i = 0; i < in->watch.other_reason_count; i++)
        json_array_append_new(other, json_string(in->watch.other_reasons[i]));
    json_object_set_new(root, "other_reasons", other);
    int rc = root != NULL ? json_dump_file(root, c->json_path, JSON_INDENT(2)) : -1;
    if (rc != 0)
        fprintf(stderr, "oms-demo: cannot write %s\n", c->json_path);
    json_decref(root);
    return rc != 0 ? -EIO : 0;
}

bool demo_report(const demo_report_in_t *in)
{
    demo_figures_t f;
    if (figures_compute(in, &f) != 0) {
        fprintf(stderr, "oms-demo: out of memory for the report\n");
        figures_free(&f);
        return false;
    }
    print_table(in, &f);
    bool ok = f.ok;
    if (in->cfg->json_path != NULL && write_json(in, &f) != 0)
        ok = false;
    figures_free(&f);
    return ok;
}
