/* SPDX-License-Identifier: MIT */
#pragma once

#include <curl/curl.h>
#include <systemd/sd-event.h>

#include "event-timer.h"

typedef void (*curl_event_done_fn)(CURL *easy, CURLcode result, void *userdata);

/* libcurl's multi interface driven by sd-event, after systemd's src/import/curl-util.c, with
 * one difference: curl's sockets live in an epoll set of their own, which is one io source of
 * sd-event. sd-event dispatches one source per iteration, and each iteration costs an
 * epoll_wait(2) and the prepare callbacks; a source per socket paid that for every answer of
 * the worker, where one source takes all the answers that are in. One timer carries curl's
 * timeout, and the finished transfers are handed to `done`. */
typedef struct CurlEvent {
    sd_event *event;
    sd_event_source *io; /* owns epfd */
    int epfd;
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
