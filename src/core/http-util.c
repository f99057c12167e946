/* SPDX-License-Identifier: MIT */
#include "http-util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool request_id_is_valid(const char *s, size_t len)
{
    if (len == 0 || len > REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] <= ' ' || s[i] > '~' || s[i] == '"' || s[i] == '\\')
            return false;
    return true;
}

bool content_type_is_json(const char *s, size_t len)
{
    static const char json[] = "application/json";
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (len - i < sizeof(json) - 1 || strncasecmp(s + i, json, sizeof(json) - 1) != 0)
        return false;
    i += sizeof(json) - 1;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i == len || s[i] == ';';
}

const char *http_reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 207:
        return "Multi-Status";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Request Entity Too Large"; /* as libh2o's own 413 says it */
    case 415:
        return "Unsupported Media Type";
    case 431:
        return "Request Header Fields Too Large";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Error";
    }
}

uint64_t http_retry_after_sec(uint64_t usec)
{
    uint64_t sec = (usec + 999999) / 1000000;
    return sec ? sec : 1;
}

bool http_target_absolute_path(const char *target, size_t len, size_t *ret_offset)
{
    size_t i;
    if (len >= 7 && strncasecmp(target, "http://", 7) == 0)
        i = 7;
    else if (len >= 8 && strncasecmp(target, "https://", 8) == 0)
        i = 8;
    else
        return false;
    size_t host = i;
    while (i < len && target[i] != '/' && target[i] != '?' && target[i] != '#')
        i++;
    if (i == host)
        return false; /* "http:///path": no host */
    *ret_offset = i;
    return true;
}

int url_redact_userinfo(const char *url, char **ret)
{
    const char *scheme_end = strstr(url, "://");
    const char *start = scheme_end ? scheme_end + 3 : url;
    const char *at = strrchr(start, '@');
    int r;
    if (!at)
        r = asprintf(ret, "%s", url);
    else {
        /* the user's name is kept when a password follows it */
        const char *colon = memchr(start, ':', (size_t)(at - start));
        int keep = (int)(colon ? colon - url + 1 : start - url);
        r = asprintf(ret, "%.*s***%s", keep, url, at);
    }
    return r < 0 ? -ENOMEM : 0;
}

bool http_target_is(const char *target, size_t len, const char *path)
{
    size_t off = 0;
    if (!http_target_absolute_path(target, len, &off))
        off = 0;
    const char *q = memchr(target + off, '?', len - off);
    size_t n = (q ? (size_t)(q - target) : len) - off;
    return n == strlen(path) && memcmp(target + off, path, n) == 0;
}
