/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the input is an /enqueue body for job_parse_request, and its first line (up
 * to the first NUL or newline) a header value for request_id_is_valid and content_type_is_json.
 * Besides crashes and sanitizer reports, it aborts when an invariant between the modules fails:
 * - what job_parse_request accepts passed json_check and is a valid place id;
 * - json_check is the stricter parser: what it accepts, json-c's strict mode parses;
 * - a body json_check accepts is "invalid JSON" exactly when it is not an object, and otherwise
 *   gets the answer that json-c's own view of its "placeId" member calls for;
 * - job ids are "reviews:" + place id + ":start";
 * - the response bodies built from the outcome are JSON that parses back to what went in, and so
 *   is what the JSON writer makes of the input's first line, as a value and as a key (valid
 *   UTF-8 JSON whatever the line, U+FFFD in place of what is not UTF-8);
 * - the header helpers agree with small reference predicates written from http-util.h's rules.
 * Built by scripts/fuzz. */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http-util.h"
#include "job.h"
#include "json-check.h"
#include "response.h"
#include "timefmt.h"

/* abort() with a line saying which invariant failed; libFuzzer then saves the input. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz-request: invariant failed at %s:%d: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* An exact-size heap copy, so that AddressSanitizer sees any read past the end. */
static char *copy_exact(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    CHECK(p);
    if (size)
        memcpy(p, data, size);
    return p;
}

static bool is_json_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* json-c's verdict, set up as job.c sets it up (strict, UTF-8 validated, `depth` deep at most):
 * one JSON text and nothing but whitespace after it. json-c cannot tell that a top-level number
 * or literal has ended without something after it, so the text is given a NUL terminator, as
 * json-c's documentation suggests; json_check never accepts a raw NUL, so it changes nothing
 * else. Returns the parsed value in *ret (which may be NULL for "null") when ret is given. */
static bool jsonc_accepts_flags(const char *s, size_t len, int depth, int flags, json_object **ret)
{
    char *t = malloc(len + 1);
    CHECK(t);
    memcpy(t, s, len);
    t[len] = '\0';
    json_tokener *tok = json_tokener_new_ex(depth);
    CHECK(tok);
    json_tokener_set_flags(tok, flags);
    json_object *o = json_tokener_parse_ex(tok, t, (int)len + 1);
    bool ok = json_tokener_get_error(tok) == json_tokener_success;
    if (ok) {
        size_t end = json_tokener_get_parse_end(tok);
        ok = end <= len;
        for (size_t i = end; ok && i < len; i++)
            ok = is_json_ws(s[i]);
    }
    json_tokener_free(tok);
    free(t);
    if (ok && ret)
        *ret = o;
    else
        json_object_put(o);
    return ok;
}

static bool jsonc_accepts(const char *s, size_t len, int depth, json_object **ret)
{
    return jsonc_accepts_flags(s, len, depth, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8,
                               ret);
}

/* RFC 3629, written apart from json_check's: no overlong forms, surrogates or code points above
 * U+10FFFF. */
static bool ref_utf8_is_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], need;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0)
            need = 1, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0)
            need = 2, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0)
            need = 3, cp = c & 0x07;
        else
            return false;
        if (n - i <= need)
            return false;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[need] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

/* The answer README.md's "POST /enqueue" calls for, given json-c's parse of a body that json_check
 * accepted. */
static JobError expected_error(json_object *o, const char **ret_place_id)
{
    json_object *p;
    *ret_place_id = NULL;
    if (!json_object_is_type(o, json_type_object))
        return JOB_INVALID_JSON;
    if (!json_object_object_get_ex(o, "placeId", &p) || !p)
        return JOB_PLACE_ID_REQUIRED;
    if (!json_object_is_type(p, json_type_string))
        return JOB_PLACE_ID_NOT_STRING;
    const char *s = json_object_get_string(p);
    size_t l = (size_t)json_object_get_string_len(p);
    if (l == 0)
        return JOB_PLACE_ID_REQUIRED;
    if (l > PLACE_ID_MAX)
        return JOB_PLACE_ID_INVALID;
    for (size_t i = 0; i < l; i++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", s[i]) ||
            s[i] == '\0')
            return JOB_PLACE_ID_INVALID;
    *ret_place_id = s;
    return JOB_OK;
}

/* Parses a response body back with json-c (strict) and checks that it is an object holding
 * exactly the given string members, NULL-terminated key, value pairs. */
static void check_body(const char *body, size_t len, ...)
{
    CHECK(body);
    CHECK(strlen(body) == len);
    /* What we send must pass our own strict check too. */
    CHECK(json_check(body, len, REQUEST_JSON_MAX_DEPTH));
    json_object *o = NULL;
    CHECK(jsonc_accepts(body, len, REQUEST_JSON_MAX_DEPTH, &o));
    CHECK(json_object_is_type(o, json_type_object));

    va_list ap;
    va_start(ap, len);
    int n = 0;
    for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        json_object *m;
        CHECK(json_object_object_get_ex(o, k, &m));
        CHECK(json_object_is_type(m, json_type_string));
        CHECK((size_t)json_object_get_string_len(m) == strlen(v));
        CHECK(strcmp(json_object_get_string(m), v) == 0);
        n++;
    }
    va_end(ap);
    CHECK(json_object_object_length(o) == n);
    json_object_put(o);
}

/* response_object (the JSON writer under every response and log line) on any string, as a
 * value and as a key: the body is valid UTF-8 JSON whatever the string (what is not UTF-8 becomes
 * U+FFFD), and json-c reads back the very bytes of a valid string. */
static void check_writer(const char *v)
{
    size_t bl = 0, vl = strlen(v);
    bool utf8 = ref_utf8_is_valid((const unsigned char *)v, vl);
    json_object *o = NULL, *m;

    char *b = response_object(&bl, "skipped", (const char *)NULL, "k", v, NULL);
    CHECK(b && strlen(b) == bl);
    CHECK(json_check(b, bl, REQUEST_JSON_MAX_DEPTH));
    CHECK(jsonc_accepts_flags(b, bl, REQUEST_JSON_MAX_DEPTH, JSON_TOKENER_STRICT, &o));
    CHECK(json_object_is_type(o, json_type_object) && json_object_object_length(o) == 1);
    CHECK(json_object_object_get_ex(o, "k", &m) && json_object_is_type(m, json_type_string));
    size_t ml = (size_t)json_object_get_string_len(m);
    CHECK(ref_utf8_is_valid((const unsigned char *)json_object_get_string(m), ml));
    if (utf8)
        CHECK(ml == vl && memcmp(json_object_get_string(m), v, vl) == 0);
    else
        CHECK(ml <= 3 * vl && strstr(json_object_get_string(m), "\xEF\xBF\xBD"));
    json_object_put(o);
    free(b);

    b = response_object(&bl, v, "v", NULL);
    CHECK(b && strlen(b) == bl);
    CHECK(json_check(b, bl, REQUEST_JSON_MAX_DEPTH));
    o = NULL;
    CHECK(jsonc_accepts_flags(b, bl, REQUEST_JSON_MAX_DEPTH, JSON_TOKENER_STRICT, &o));
    CHECK(json_object_is_type(o, json_type_object) && json_object_object_length(o) == 1);
    json_object_object_foreach(o, key, val)
    {
        CHECK(ref_utf8_is_valid((const unsigned char *)key, strlen(key)));
        CHECK(!utf8 || strcmp(key, v) == 0);
        CHECK(strcmp(json_object_get_string(val), "v") == 0);
    }
    json_object_put(o);
    free(b);
}

static uint64_t read_u64(const uint8_t *data, size_t size, size_t offset)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8 && offset + i < size; i++)
        v |= (uint64_t)data[offset + i] << (8 * i);
    return v;
}

/* Reads back what format_go_duration wrote: [[Nh]Nm]N[.F]s, or N[.F] with ns, µs or ms. */
static bool parse_go_duration(const char *s, uint64_t *ret)
{
    unsigned __int128 total = 0;
    if (strcmp(s, "0s") == 0) {
        *ret = 0;
        return true;
    }
    while (*s) {
        unsigned __int128 whole = 0, frac = 0, scale = 1;
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            whole = whole * 10 + (unsigned)(*s++ - '0');
        if (*s == '.') {
            s++;
            if (*s < '0' || *s > '9')
                return false;
            while (*s >= '0' && *s <= '9') {
                frac = frac * 10 + (unsigned)(*s++ - '0');
                scale *= 10;
            }
        }
        uint64_t unit;
        if (strncmp(s, "ns", 2) == 0)
            unit = 1, s += 2;
        else if (strncmp(s, "\xc2\xb5s", 3) == 0)
            unit = 1000, s += 3;
        else if (strncmp(s, "ms", 2) == 0)
            unit = 1000000, s += 2;
        else if (*s == 's')
            unit = 1000000000, s += 1;
        else if (*s == 'm')
            unit = 60ULL * 1000000000, s += 1;
        else if (*s == 'h')
            unit = 3600ULL * 1000000000, s += 1;
        else
            return false;
        if ((frac * unit) % scale != 0)
            return false; /* more fraction digits than the unit has nanoseconds */
        total += whole * unit + frac * unit / scale;
    }
    if (total > UINT64_MAX)
        return false;
    *ret = (uint64_t)total;
    return true;
}

static void check_timefmt(const uint8_t *data, size_t size, char ts[static RFC3339_MAX])
{
    /* format_rfc3339 on any time: a string that fits and ends in 'Z', or an error. */
    time_t t = (time_t)read_u64(data, size, 0);
    memset(ts, 'x', RFC3339_MAX);
    if (format_rfc3339(t, ts) == 0) {
        size_t l = strnlen(ts, RFC3339_MAX);
        CHECK(l < RFC3339_MAX && l >= 10 && ts[l - 1] == 'Z' && ts[l - 10] == 'T');
    } else
        strcpy(ts, "2024-01-15T10:30:00Z");

    /* format_go_duration on any count of nanoseconds, read back exactly. */
    uint64_t nsec = read_u64(data, size, 8), back;
    char d[GO_DURATION_MAX];
    memset(d, 'x', sizeof(d));
    format_go_duration(nsec, d);
    CHECK(strnlen(d, sizeof(d)) < sizeof(d));
    CHECK(parse_go_duration(d, &back));
    CHECK(back == nsec);
}

/* http-util.h: 1 to REQUEST_ID_MAX printable ASCII characters, no spaces or quotes; since the value
 * goes into JSON, no backslash either. (The apostrophe is taken as allowed.) */
static bool ref_request_id_is_valid(const unsigned char *s, size_t len)
{
    if (len < 1 || len > REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
            return false;
    return true;
}

/* http-util.h: the media type, before any ';' and without the optional whitespace (SP, HTAB) of
 * RFC 9110 around it, is application/json in any case. */
static bool ref_content_type_is_json(const char *s, size_t len)
{
    static const char json[] = "application/json";
    const char *semi = memchr(s, ';', len);
    size_t b = 0, e = semi ? (size_t)(semi - s) : len;
    while (b < e && (s[b] == ' ' || s[b] == '\t'))
        b++;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'))
        e--;
    if (e - b != sizeof(json) - 1)
        return false;
    for (size_t i = 0; i < e - b; i++) {
        char c = s[b + i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != json[i])
            return false;
    }
    return true;
}

static void check_header_value(const uint8_t *data, size_t len)
{
    char *v = copy_exact(data, len);
    CHECK(request_id_is_valid(v, len) == ref_request_id_is_valid((const unsigned char *)v, len));
    CHECK(content_type_is_json(v, len) == ref_content_type_is_json(v, len));
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = copy_exact(data, size);
    char place[PLACE_ID_MAX + 1];
    memset(place, 'x', sizeof(place));
    JobError e = job_parse_request(body, size, place);

    CHECK(e == JOB_OK || e == JOB_INVALID_JSON || e == JOB_PLACE_ID_REQUIRED ||
          e == JOB_PLACE_ID_NOT_STRING || e == JOB_PLACE_ID_INVALID);
    const char *msg = job_error_message(e);
    CHECK(msg);
    CHECK(e == JOB_OK || strcmp(msg, "invalid JSON") == 0 ||
          strcmp(msg, "placeId is required") == 0 || strcmp(msg, "placeId must be a string") == 0 ||
          strcmp(msg, "placeId is invalid") == 0);

    bool checked = json_check(body, size, REQUEST_JSON_MAX_DEPTH);

    /* (a) what is accepted passed the strict check and is a valid place id */
    size_t pl = 0;
    if (e == JOB_OK) {
        pl = strnlen(place, sizeof(place));
        CHECK(pl <= PLACE_ID_MAX);
        CHECK(place_id_is_valid(place, pl));
        CHECK(checked);
    }
    /* json_check runs first: what it refuses is invalid JSON whatever json-c thinks of it */
    if (!checked)
        CHECK(e == JOB_INVALID_JSON);

    if (checked) {
        /* (b) json_check accepts, so json-c's strict mode parses it. json-c counts depth by
         * values (the top level is 0) and refuses a value at index max_depth, where json_check
         * counts open containers: with the same limit, 16 nested arrays around a scalar pass
         * json_check(16) and fail json-c(16), so json-c gets one more level here. */
        json_object *o = NULL;
        CHECK(jsonc_accepts(body, size, REQUEST_JSON_MAX_DEPTH + 1, &o));

        /* And the answer is the one that json-c's view of the body calls for: in particular a
         * JSON object that json_check accepts is never "invalid JSON". */
        const char *want_place;
        JobError want = expected_error(o, &want_place);
        CHECK(e == want);
        if (e == JOB_OK)
            CHECK(strcmp(place, want_place) == 0);
        json_object_put(o);
    }

    char ts[RFC3339_MAX];
    check_timefmt(data, size, ts);

    /* (c) the job id */
    if (e == JOB_OK) {
        char job_id[JOB_ID_MAX + 1];
        memset(job_id, 'x', sizeof(job_id));
        size_t jl = job_id_format(place, job_id);
        CHECK(jl == strlen("reviews:") + pl + strlen(":start"));
        CHECK(strnlen(job_id, sizeof(job_id)) == jl);
        CHECK(memcmp(job_id, "reviews:", 8) == 0);
        CHECK(memcmp(job_id + 8, place, pl) == 0);
        CHECK(strcmp(job_id + 8 + pl, ":start") == 0);

        /* (d) the bodies built from it parse back */
        size_t bl = 0;
        char *b = response_enqueued(place, job_id, ts, &bl);
        check_body(b, bl, "status", "enqueued", "placeId", place, "jobId", job_id, "timestamp", ts,
                   NULL);
        free(b);
        b = response_worker_error("timeout", place, job_id, ts, &bl);
        check_body(b, bl, "status", "error", "error", "worker enqueue failed: timeout", "placeId",
                   place, "jobId", job_id, "timestamp", ts, NULL);
        free(b);
    } else {
        size_t bl = 0;
        char *b = response_error(msg, ts, &bl);
        check_body(b, bl, "status", "error", "error", msg, "timestamp", ts, NULL);
        free(b);
    }

    /* The first line as a header value, and the whole input too (h2o hands values over by
     * length, and a NUL or a newline inside one must not confuse either helper); and as a
     * string for the JSON writer. */
    size_t line = 0;
    while (line < size && data[line] != '\0' && data[line] != '\n')
        line++;
    check_header_value(data, line);
    check_header_value(data, size);
    char *first = strndup((const char *)data, line);
    CHECK(first);
    check_writer(first);
    free(first);

    free(body);
    return 0;
}
