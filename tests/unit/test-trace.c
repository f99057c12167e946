/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/trace.h: traceparent as W3C Trace Context level 1 reads it, tracestate
 * combined and bounded, a trace continued or started. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "trace.h"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define PID "00f067aa0ba902b7"

/* Parses s from an exactly sized heap copy with no NUL after it (AddressSanitizer sees any read
 * past the end). */
static bool parse(const char *s, char tid[static TRACE_ID_LEN + 1], uint8_t *flags)
{
    size_t len = strlen(s);
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, s, len);
    bool ok = trace_parent_parse(copy, len, tid, flags);
    free(copy);
    return ok;
}

static void assert_invalid(const char *s)
{
    char tid[TRACE_ID_LEN + 1];
    uint8_t flags;
    if (parse(s, tid, &flags))
        fail_msg("accepted: \"%s\"", s);
}

static void test_valid(void **state)
{
    (void)state;
    char tid[TRACE_ID_LEN + 1];
    uint8_t flags = 0xaa;
    assert_true(parse("00-" TID "-" PID "-01", tid, &flags));
    assert_string_equal(tid, TID);
    assert_int_equal(flags, 1);
    assert_true(parse("00-" TID "-" PID "-00", tid, &flags));
    assert_int_equal(flags, 0);
    assert_true(parse("00-" TID "-" PID "-fe", tid, &flags)); /* unknown flags kept */
    assert_int_equal(flags, 0xfe);
}

static void test_uppercase_invalid(void **state)
{
    (void)state;
    assert_invalid("00-4BF92F3577B34DA6A3CE929D0E0E4736-" PID "-01");
    assert_invalid("00-" TID "-00F067AA0BA902B7-01");
    assert_invalid("00-" TID "-" PID "-0A");
    assert_invalid("0A-" TID "-" PID "-01");
}

static void test_all_zero_ids(void **state)
{
    (void)state;
    assert_invalid("00-00000000000000000000000000000000-" PID "-01");
    assert_invalid("00-" TID "-0000000000000000-01");
}

static void test_version_ff(void **state)
{
    (void)state;
    assert_invalid("ff-" TID "-" PID "-01");
    assert_invalid("ff-" TID "-" PID "-01-extra");
}

static void test_future_version(void **state)
{
    (void)state;
    char tid[TRACE_ID_LEN + 1];
    uint8_t flags;
    assert_true(parse("01-" TID "-" PID "-01", tid, &flags));
    assert_true(parse("cc-" TID "-" PID "-01-what-the-future-holds", tid, &flags));
    assert_string_equal(tid, TID);
    assert_int_equal(flags, 1);
    assert_invalid("cc-" TID "-" PID "-01.what");
    assert_invalid("cc-" TID "-" PID "-0"); /* short even for a later version */
    /* version 00 has nothing after its flags */
    assert_invalid("00-" TID "-" PID "-01-extra");
}

static void test_short_long_malformed(void **state)
{
    (void)state;
    assert_invalid("");
    assert_invalid("00");
    assert_invalid("00-" TID "-" PID "-1");
    assert_invalid("00-" TID "-" PID "-011");
    assert_invalid("00-" TID "-" PID "-01 ");
    assert_invalid("00-" TID "1-" PID "-01");
    assert_invalid("00_" TID "-" PID "-01");
    assert_invalid("00-" TID "_" PID "-01");
    assert_invalid("00-" TID "-" PID "_01");
    assert_invalid("00-4bf92f3577b34da6a3ce929d0e0e473g-" PID "-01");
    assert_invalid("00-" TID "-00f067aa0ba902bz-01");
    assert_invalid("0x-" TID "-" PID "-01");
}

static int normalize(const char *a, const char *b, char out[static TRACESTATE_MAX + 1])
{
    const char *v[2] = {a, b};
    size_t l[2] = {strlen(a), b ? strlen(b) : 0};
    return tracestate_normalize(v, l, b ? 2 : 1, out);
}

static void test_tracestate(void **state)
{
    (void)state;
    char out[TRACESTATE_MAX + 1];
    assert_int_equal(normalize("rojo=00f067aa0ba902b7", NULL, out), 21);
    assert_string_equal(out, "rojo=00f067aa0ba902b7");
    /* several lines are one list; blanks and empty members go */
    assert_true(normalize(" rojo=1 ,, congo=t61rcWkgMzE", "\tfw529a3039@dt=x y", out) > 0);
    assert_string_equal(out, "rojo=1,congo=t61rcWkgMzE,fw529a3039@dt=x y");
    assert_int_equal(normalize("", NULL, out), 0);
    assert_string_equal(out, "");
    /* malformed: dropped whole */
    assert_int_equal(normalize("rojo=1,Congo=2", NULL, out), -EINVAL);
    assert_string_equal(out, "");
    assert_int_equal(normalize("rojo", NULL, out), -EINVAL);
    assert_int_equal(normalize("rojo=a\x01", NULL, out), -EINVAL);
    assert_int_equal(normalize("rojo=a=b", NULL, out), -EINVAL);
    assert_int_equal(normalize("rojo=", NULL, out), -EINVAL);
    assert_int_equal(normalize("a@toolongsystemid=1", NULL, out), -EINVAL);
    /* 33 members */
    char many[256] = "";
    for (int i = 0; i < 33; i++)
        sprintf(many + strlen(many), "%sk%02d=1", i ? "," : "", i);
    assert_int_equal(normalize(many, NULL, out), -EINVAL);
    many[strlen(many) - 6] = '\0'; /* 32 */
    assert_int_equal(normalize(many, NULL, out), (int)strlen(many));
}

/* Over TRACESTATE_MAX: members over 128 characters go first, then the last ones. */
static void test_tracestate_truncated(void **state)
{
    (void)state;
    char out[TRACESTATE_MAX + 1], big[8 * 100], longv[200];
    memset(longv, 'v', 150);
    longv[150] = '\0';
    big[0] = '\0';
    for (int i = 0; i < 6; i++)
        sprintf(big + strlen(big), "%sk%d=%.*s", i ? "," : "", i, 95, longv);
    sprintf(big + strlen(big), ",long=%s", longv); /* 6 x 98 + 1 + 155: over 512 */
    int n = normalize(big, NULL, out);
    assert_true(n > 0 && n <= TRACESTATE_MAX);
    assert_null(strstr(out, "long="));
    assert_non_null(strstr(out, "k4="));
    assert_null(strstr(out, "k5=")); /* five of 98 fit in 512, six do not */
    assert_int_equal(strncmp(out, "k0=", 3), 0);
}

static void test_begin_continues(void **state)
{
    (void)state;
    Trace t;
    const char *tp = "00-" TID "-" PID "-01";
    trace_begin(&t, tp, strlen(tp), "rojo=1");
    assert_string_equal(t.trace_id, TID);
    assert_int_equal(strlen(t.span_id), SPAN_ID_LEN);
    assert_string_not_equal(t.span_id, PID);
    char want[TRACEPARENT_LEN + 1];
    snprintf(want, sizeof(want), "00-%s-%s-01", TID, t.span_id);
    assert_string_equal(t.traceparent, want);
    assert_string_equal(t.tracestate, "rojo=1");

    /* a later version is answered as 00, its flags kept */
    const char *future = "cc-" TID "-" PID "-03-more";
    trace_begin(&t, future, strlen(future), NULL);
    assert_string_equal(t.trace_id, TID);
    assert_int_equal(strncmp(t.traceparent, "00-", 3), 0);
    assert_string_equal(t.traceparent + TRACEPARENT_LEN - 3, "-03");
    assert_string_equal(t.tracestate, "");
}

static void test_begin_new(void **state)
{
    (void)state;
    Trace a, b;
    const char *bad = "00-00000000000000000000000000000000-" PID "-01";
    trace_begin(&a, bad, strlen(bad), "rojo=1");
    trace_begin(&b, NULL, 0, NULL);
    char tid[TRACE_ID_LEN + 1];
    uint8_t flags = 0xaa;
    assert_true(trace_parent_parse(a.traceparent, strlen(a.traceparent), tid, &flags));
    assert_string_equal(tid, a.trace_id);
    assert_int_equal(flags, 0);
    assert_string_equal(a.tracestate, ""); /* dropped with an invalid traceparent */
    assert_true(trace_parent_parse(b.traceparent, strlen(b.traceparent), tid, &flags));
    assert_string_not_equal(a.trace_id, b.trace_id);
    assert_string_not_equal(a.span_id, b.span_id);
}

static void test_restore(void **state)
{
    (void)state;
    Trace t, r;
    const char *tp = "00-" TID "-" PID "-01";
    trace_begin(&t, tp, strlen(tp), "rojo=1");
    trace_restore(&r, t.traceparent, t.tracestate);
    assert_string_equal(r.traceparent, t.traceparent);
    assert_string_equal(r.trace_id, TID);
    assert_string_equal(r.span_id, t.span_id);
    assert_string_equal(r.tracestate, "rojo=1");

    /* a job spooled without a trace (an older release's) gets a new one */
    trace_restore(&r, "", "");
    assert_int_equal(strlen(r.traceparent), TRACEPARENT_LEN);
    assert_string_not_equal(r.trace_id, TID);
    trace_restore(&r, NULL, NULL);
    assert_int_equal(strlen(r.traceparent), TRACEPARENT_LEN);
    trace_restore(&r, "0", "rojo=1");
    assert_int_equal(strlen(r.traceparent), TRACEPARENT_LEN);
    assert_string_equal(r.tracestate, "");
    /* a stored tracestate that would not pass at the door is not sent */
    trace_restore(&r, t.traceparent, "rojo=1\r\nX-Evil: 1");
    assert_string_equal(r.span_id, t.span_id);
    assert_string_equal(r.tracestate, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),           cmocka_unit_test(test_uppercase_invalid),
        cmocka_unit_test(test_all_zero_ids),    cmocka_unit_test(test_version_ff),
        cmocka_unit_test(test_future_version),  cmocka_unit_test(test_short_long_malformed),
        cmocka_unit_test(test_tracestate),      cmocka_unit_test(test_tracestate_truncated),
        cmocka_unit_test(test_begin_continues), cmocka_unit_test(test_begin_new),
        cmocka_unit_test(test_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
