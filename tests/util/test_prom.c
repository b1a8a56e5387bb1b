/* test_prom.c -- util/prom: the Prometheus text exposition renderer. Each
 * test writes a small page and compares it byte for byte with the text the
 * format requires. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

#define PAGE_BYTES_MAX (1u << 20)

static prom_page_t page;

static void setup(void) { prom_page_init(&page, PAGE_BYTES_MAX); }
static void teardown(void) { prom_page_free(&page); }

/* Takes the page and checks it is exactly want. */
static void expect_page(const char *want)
{
    size_t len;
    char *text = prom_page_take(&page, &len);
    ck_assert_msg(text != NULL, "page failed: %d", prom_page_error(&page));
    ck_assert_uint_eq(len, strlen(text));
    ck_assert_str_eq(text, want);
    free(text);
}

static void expect_failed(int err)
{
    ck_assert_int_eq(prom_page_error(&page), err);
    size_t len = 7;
    ck_assert_ptr_null(prom_page_take(&page, &len));
    ck_assert_uint_eq(len, 7);
}

/* ---- families and samples ------------------------------------------------ */

START_TEST(a_counter_is_help_type_and_its_sample)
{
    prom_family(&page, "evstore_appends_total", PROM_COUNTER, "Appends acknowledged.");
    prom_sample_u64(&page, "evstore_appends_total", NULL, 0, 18446744073709551615ull);
    expect_page("# HELP evstore_appends_total Appends acknowledged.\n"
                "# TYPE evstore_appends_total counter\n"
                "evstore_appends_total 18446744073709551615\n");
}
END_TEST

START_TEST(a_gauge_may_be_negative_and_labels_keep_their_order)
{
    prom_label_t l[] = {{"service", "pay"}, {"kind", "refunded"}};
    prom_family(&page, "oms_x", PROM_GAUGE, NULL);
    prom_sample_i64(&page, "oms_x", l, 2, -42);
    expect_page("# HELP oms_x \n# TYPE oms_x gauge\noms_x{service=\"pay\",kind=\"refunded\"} -42\n");
}
END_TEST

START_TEST(an_empty_page_is_an_empty_text)
{
    expect_page("");
}
END_TEST

/* ---- escaping ------------------------------------------------------------ */

START_TEST(label_values_escape_backslash_double_quote_and_newline)
{
    prom_label_t l = {"group", "a\\b\"c\nd"};
    prom_sample_u64(&page, "g", &l, 1, 1);
    expect_page("g{group=\"a\\\\b\\\"c\\nd\"} 1\n");
}
END_TEST

START_TEST(help_escapes_backslash_and_newline_but_not_double_quote)
{
    prom_family(&page, "h", PROM_COUNTER, "say \"hi\"\\\nthen");
    expect_page("# HELP h say \"hi\"\\\\\\nthen\n# TYPE h counter\n");
}
END_TEST

START_TEST(a_null_label_value_is_empty)
{
    prom_label_t l = {"reason", NULL};
    prom_sample_u64(&page, "o", &l, 1, 0);
    expect_page("o{reason=\"\"} 0\n");
}
END_TEST

/* ---- UTF-8 --------------------------------------------------------------- */

#define FFFD "\xef\xbf\xbd"

START_TEST(invalid_bytes_in_a_label_value_become_u_fffd_one_per_byte)
{
    /* The group name that made evstored's /metrics invalid. */
    prom_label_t l = {"group", "\xff\xfe\r"};
    prom_sample_u64(&page, "evstore_group_lag", &l, 1, 3);
    expect_page("evstore_group_lag{group=\"" FFFD FFFD "\r\"} 3\n");
}
END_TEST

START_TEST(valid_multibyte_utf8_is_kept_as_it_is)
{
    prom_label_t l = {"v", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"};
    prom_sample_u64(&page, "u", &l, 1, 1);
    expect_page("u{v=\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"} 1\n");
}
END_TEST

START_TEST(overlong_surrogate_too_large_and_truncated_sequences_are_replaced)
{
    struct {
        const char *in, *out;
    } cases[] = {
        {"\xc0\xaf", FFFD FFFD},                 /* overlong "/" */
        {"\xe0\x80\xaf", FFFD FFFD FFFD},        /* overlong, three bytes */
        {"\xed\xa0\x80", FFFD FFFD FFFD},        /* a UTF-16 surrogate */
        {"\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD}, /* above U+10FFFF */
        {"a\xe2\x82", "a" FFFD FFFD},            /* cut short at the end */
        {"\xe2\x82z", FFFD FFFD "z"},            /* cut short by ASCII */
        {"\x80x", FFFD "x"},                     /* a lone continuation byte */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        prom_label_t l = {"v", cases[i].in};
        prom_sample_u64(&page, "u", &l, 1, 1);
        char want[64];
        snprintf(want, sizeof want, "u{v=\"%s\"} 1\n", cases[i].out);
        expect_page(want);
    }
}
END_TEST

START_TEST(invalid_bytes_in_help_become_u_fffd)
{
    prom_family(&page, "h", PROM_GAUGE, "x\xffy");
    expect_page("# HELP h x" FFFD "y\n# TYPE h gauge\n");
}
END_TEST

START_TEST(lines_rendered_elsewhere_are_copied_with_their_utf8_repaired)
{
    const char text[] = "# TYPE g gauge\ng{group=\"\xfe\\\"\"} 1\n";
    prom_lines(&page, text, sizeof text - 1);
    expect_page("# TYPE g gauge\ng{group=\"" FFFD "\\\"\"} 1\n");
}
END_TEST

/* ---- histograms ---------------------------------------------------------- */

START_TEST(a_histogram_has_cumulative_buckets_then_inf_sum_and_count)
{
    const double bounds[] = {0.0005, 0.25, 1, 60};
    const uint64_t counts[] = {1, 0, 2, 3, 4}; /* the last: above 60 */
    prom_family(&page, "lat_seconds", PROM_HISTOGRAM, "Latency.");
    prom_histogram(&page, "lat_seconds", NULL, 0, bounds, counts, 4, 123.5);
    expect_page("# HELP lat_seconds Latency.\n"
                "# TYPE lat_seconds histogram\n"
                "lat_seconds_bucket{le=\"0.0005\"} 1\n"
                "lat_seconds_bucket{le=\"0.25\"} 1\n"
                "lat_seconds_bucket{le=\"1\"} 3\n"
                "lat_seconds_bucket{le=\"60\"} 6\n"
                "lat_seconds_bucket{le=\"+Inf\"} 10\n"
                "lat_seconds_sum 123.5\n"
                "lat_seconds_count 10\n");
}
END_TEST

START_TEST(a_histogram_puts_le_after_its_labels_and_escapes_them)
{
    const double bounds[] = {1};
    const uint64_t counts[] = {0, 1};
    prom_label_t l[] = {{"service", "order"}, {"route", "/o\""}};
    prom_histogram(&page, "h", l, 2, bounds, counts, 1, 2);
    expect_page("h_bucket{service=\"order\",route=\"/o\\\"\",le=\"1\"} 0\n"
                "h_bucket{service=\"order\",route=\"/o\\\"\",le=\"+Inf\"} 1\n"
                "h_sum{service=\"order\",route=\"/o\\\"\"} 2\n"
                "h_count{service=\"order\",route=\"/o\\\"\"} 1\n");
}
END_TEST

START_TEST(a_histogram_without_bounds_has_only_inf)
{
    const uint64_t counts[] = {5};
    prom_histogram(&page, "h", NULL, 0, NULL, counts, 0, 0);
    expect_page("h_bucket{le=\"+Inf\"} 5\nh_sum 0\nh_count 5\n");
}
END_TEST

/* ---- numbers ------------------------------------------------------------- */

START_TEST(floats_read_back_exactly_and_nan_and_infinities_are_spelled_as_the_format)
{
    prom_sample_f64(&page, "a", NULL, 0, 0.1);
    prom_sample_f64(&page, "b", NULL, 0, 1234567890123.0);
    prom_sample_f64(&page, "c", NULL, 0, 0.1 + 0.2);
    prom_sample_f64(&page, "d", NULL, 0, NAN);
    prom_sample_f64(&page, "e", NULL, 0, INFINITY);
    prom_sample_f64(&page, "f", NULL, 0, -INFINITY);
    prom_sample_f64(&page, "g", NULL, 0, 5e-05);
    expect_page("a 0.1\nb 1234567890123\nc 0.30000000000000004\nd NaN\ne +Inf\nf -Inf\n"
                "g 5e-05\n");
}
END_TEST

/* ---- what is not written ------------------------------------------------- */

START_TEST(a_metric_name_outside_the_grammar_fails_the_page)
{
    const char *bad[] = {"", "9lives", "a-b", "a b", "a\nb", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        prom_sample_u64(&page, bad[i], NULL, 0, 1);
        expect_failed(-EINVAL);
    }
    prom_family(&page, "a{b}", PROM_COUNTER, "x");
    expect_failed(-EINVAL);
    ck_assert(prom_metric_name_valid("evstore:appends_total_2"));
    ck_assert(!prom_label_name_valid("a:b"));
}
END_TEST

START_TEST(a_label_name_outside_the_grammar_fails_the_page)
{
    prom_label_t l = {"le\"", "1"};
    prom_sample_u64(&page, "x", &l, 1, 1);
    expect_failed(-EINVAL);
}
END_TEST

START_TEST(a_page_over_its_limit_fails_and_later_writes_do_nothing)
{
    prom_page_init(&page, 16);
    prom_sample_u64(&page, "short", NULL, 0, 1); /* 8 bytes */
    ck_assert_int_eq(prom_page_error(&page), 0);
    prom_sample_u64(&page, "longer_name", NULL, 0, 1);
    ck_assert_int_eq(prom_page_error(&page), -EMSGSIZE);
    prom_sample_u64(&page, "x", NULL, 0, 1);
    expect_failed(-EMSGSIZE);
}
END_TEST

START_TEST(a_page_grows_past_its_first_allocation)
{
    prom_label_t l = {"k", "0123456789012345678901234567890123456789"};
    for (int i = 0; i < 1000; i++)
        prom_sample_u64(&page, "grow", &l, 1, (uint64_t)i);
    size_t len;
    char *text = prom_page_take(&page, &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(len, strlen(text));
    ck_assert_ptr_nonnull(strstr(text, "grow{k=\"0123456789012345678901234567890123456789\"} 999\n"));
    free(text);
}
END_TEST

/* ---- parsing a label set -------------------------------------------------- */

START_TEST(a_label_set_parses_into_unescaped_names_and_values)
{
    const char *text = "type=\"Order\\\"Placed\",result=\"ok\\n\\\\\",reason=\"\"";
    char buf[128];
    prom_label_t l[4];
    ck_assert_int_eq(prom_labels_parse(text, buf, sizeof buf, l, 4), 3);
    ck_assert_str_eq(l[0].name, "type");
    ck_assert_str_eq(l[0].value, "Order\"Placed");
    ck_assert_str_eq(l[1].name, "result");
    ck_assert_str_eq(l[1].value, "ok\n\\");
    ck_assert_str_eq(l[2].name, "reason");
    ck_assert_str_eq(l[2].value, "");
    /* Written back, it is the same text. */
    prom_sample_u64(&page, "n", l, 3, 1);
    char want[160];
    snprintf(want, sizeof want, "n{%s} 1\n", text);
    expect_page(want);
}
END_TEST

START_TEST(an_empty_label_set_has_no_labels)
{
    char buf[4];
    prom_label_t l[1];
    ck_assert_int_eq(prom_labels_parse("", buf, sizeof buf, l, 1), 0);
    ck_assert_int_eq(prom_labels_parse(NULL, buf, sizeof buf, l, 1), 0);
}
END_TEST

START_TEST(a_malformed_label_set_is_einval)
{
    const char *bad[] = {"a", "a=b", "a=\"b", "a=\"b\",", "a=\"b\"c=\"d\"", "=\"b\"",
                         "a b=\"c\"", "a=\"\\x\"", "a=\"b\"\"", "a=\"b\nc\"", ",a=\"b\"",
                         "type=\"a\"b\",result=\"ok\""};
    char buf[64];
    prom_label_t l[4];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(prom_labels_parse(bad[i], buf, sizeof buf, l, 4) == -EINVAL, "%s", bad[i]);
}
END_TEST

START_TEST(a_label_set_over_the_bounds_is_e2big)
{
    char buf[64];
    prom_label_t l[2];
    ck_assert_int_eq(prom_labels_parse("a=\"1\",b=\"2\",c=\"3\"", buf, sizeof buf, l, 2), -E2BIG);
    ck_assert_int_eq(prom_labels_parse("a=\"1\"", buf, 3, l, 2), -E2BIG);
}
END_TEST

static Suite *prom_suite(void)
{
    Suite *s = suite_create("util.prom");
    TCase *tc = tcase_create("prom");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_counter_is_help_type_and_its_sample);
    tcase_add_test(tc, a_gauge_may_be_negative_and_labels_keep_their_order);
    tcase_add_test(tc, an_empty_page_is_an_empty_text);
    tcase_add_test(tc, label_values_escape_backslash_double_quote_and_newline);
    tcase_add_test(tc, help_escapes_backslash_and_newline_but_not_double_quote);
    tcase_add_test(tc, a_null_label_value_is_empty);
    tcase_add_test(tc, invalid_bytes_in_a_label_value_become_u_fffd_one_per_byte);
    tcase_add_test(tc, valid_multibyte_utf8_is_kept_as_it_is);
    tcase_add_test(tc, overlong_surrogate_too_large_and_truncated_sequences_are_replaced);
    tcase_add_test(tc, invalid_bytes_in_help_become_u_fffd);
    tcase_add_test(tc, lines_rendered_elsewhere_are_copied_with_their_utf8_repaired);
    tcase_add_test(tc, a_histogram_has_cumulative_buckets_then_inf_sum_and_count);
    tcase_add_test(tc, a_histogram_puts_le_after_its_labels_and_escapes_them);
    tcase_add_test(tc, a_histogram_without_bounds_has_only_inf);
    tcase_add_test(tc, floats_read_back_exactly_and_nan_and_infinities_are_spelled_as_the_format);
    tcase_add_test(tc, a_metric_name_outside_the_grammar_fails_the_page);
    tcase_add_test(tc, a_label_name_outside_the_grammar_fails_the_page);
    tcase_add_test(tc, a_page_over_its_limit_fails_and_later_writes_do_nothing);
    tcase_add_test(tc, a_page_grows_past_its_first_allocation);
    tcase_add_test(tc, a_label_set_parses_into_unescaped_names_and_values);
    tcase_add_test(tc, an_empty_label_set_has_no_labels);
    tcase_add_test(tc, a_malformed_label_set_is_einval);
    tcase_add_test(tc, a_label_set_over_the_bounds_is_e2big);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(prom_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
