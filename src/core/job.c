/* SPDX-License-Identifier: MIT */
#include "job.h"

#include <json-c/json.h>
#include <string.h>

#include "json-check.h"

const char *job_error_message(JobError e)
{
    switch (e) {
    case JOB_OK:
        return "ok";
    case JOB_INVALID_JSON:
        return "invalid JSON";
    case JOB_PLACE_ID_REQUIRED:
        return "placeId is required";
    case JOB_PLACE_ID_NOT_STRING:
        return "placeId must be a string";
    case JOB_PLACE_ID_INVALID:
        return "placeId is invalid";
    }
    return "invalid request";
}

bool place_id_is_valid(const char *s, size_t len)
{
    if (len == 0 || len > PLACE_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool only_whitespace(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

/* Strict RFC 8259 (json_check) first, then json-c builds the object: "{}x", "{} {}", NaN, a raw
 * control character, invalid UTF-8, a truncated document or one nested too deep are invalid. */
json_object *job_parse_json(const char *body, size_t len)
{
    if (len == 0 || len > (size_t)INT32_MAX || !json_check(body, len, REQUEST_JSON_MAX_DEPTH))
        return NULL;
    /* json-c counts values, the top one at depth 0, json_check counts open containers: a
     * value inside 16 containers is at json-c's depth 16, which its limit must let through. */
    json_tokener *tok = json_tokener_new_ex(REQUEST_JSON_MAX_DEPTH + 1);
    if (!tok)
        return NULL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    if (o && json_tokener_get_error(tok) == json_tokener_success) {
        size_t end = json_tokener_get_parse_end(tok);
        if (end > len || !only_whitespace(body + end, len - end)) {
            json_object_put(o);
            o = NULL;
        }
    } else {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

JobError job_parse_request(const char *body, size_t len, char ret_place_id[static PLACE_ID_MAX + 1])
{
    json_object *o = job_parse_json(body, len);
    if (!o)
        return JOB_INVALID_JSON;

    JobError e;
    json_object *p;
    if (!json_object_is_type(o, json_type_object))
        e = JOB_INVALID_JSON;
    else if (!json_object_object_get_ex(o, "placeId", &p) || json_object_is_type(p, json_type_null))
        e = JOB_PLACE_ID_REQUIRED;
    else if (!json_object_is_type(p, json_type_string))
        e = JOB_PLACE_ID_NOT_STRING;
    else {
        const char *s = json_object_get_string(p);
        size_t l = (size_t)json_object_get_string_len(p);
        if (l == 0)
            e = JOB_PLACE_ID_REQUIRED;
        else if (!place_id_is_valid(s, l) || strlen(s) != l)
            e = JOB_PLACE_ID_INVALID;
        else {
            memcpy(ret_place_id, s, l);
            ret_place_id[l] = '\0';
            e = JOB_OK;
        }
    }
    json_object_put(o);
    return e;
}

size_t job_id_format(const char *place_id, char buf[static JOB_ID_MAX + 1])
{
    size_t l = strnlen(place_id, PLACE_ID_MAX);
    char *p = buf;
    memcpy(p, JOB_ID_PREFIX, sizeof(JOB_ID_PREFIX) - 1);
    p += sizeof(JOB_ID_PREFIX) - 1;
    memcpy(p, place_id, l);
    p += l;
    memcpy(p, JOB_ID_SUFFIX, sizeof(JOB_ID_SUFFIX));
    return (size_t)(p - buf) + sizeof(JOB_ID_SUFFIX) - 1;
}
