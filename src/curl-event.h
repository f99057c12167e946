/* SPDX-License-Identifier: MIT */
#pragma once

#include <curl/curl.h>
#include <systemd/sd-event.h>

#include "event-timer.h"

typedef void (*curl_event_done_fn)(CURL *easy, CURLcode result, void *userdata);

/* libcurl's multi interface driven by sd-event, after systemd's src/import/curl-util.c: an io
 * source per socket curl watches (kept with curl_multi_assign), one timer for curl's timeout,
 * and the finished transfers handed to `done`. */
typedef struct CurlEvent {
    sd_event *event;
    CURLM *multi;
    EventTimer timer;
    curl_event_done_fn done;
    void *userdata;
} CurlEvent;

int curl_event_init(CurlEvent *ce, sd_event *e, curl_event_done_fn done, void *userdata);
/* Removes nothing: the caller removes and frees its easy handles first. Takes a zeroed one. */
void curl_event_done(CurlEvent *ce);

/* Starts a transfer; `done` is called from the loop when it ends, never from inside this. */
int curl_event_add(CurlEvent *ce, CURL *easy);
void curl_event_remove(CurlEvent *ce, CURL *easy);
