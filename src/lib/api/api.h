/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The HTTP/1.1 JSON API on a Unix socket: libmicrohttpd reads and writes in a thread of its
 * own, the handlers run on the daemon's sd-event loop (api.c says how a request crosses).
 * The limits below are corrald(8)'s, section LIMITS.
 */
#pragma once

#include <stddef.h>

typedef struct Api Api;
typedef struct Control Control;

#include "basic/time-util.h"

/* Largest request body accepted; bigger ones get 413 (before they are read, when
 * Content-Length says so). */
#define API_BODY_MAX (1024 * 1024)
/* Longest request URL (path and query); longer ones get 414. */
#define API_URL_MAX 8192
/* Most query arguments in a request; more get 431. */
#define API_QUERY_ARGS_MAX 32
/* A connection's memory for its request line and headers: what does not fit gets 431. */
#define API_HEADERS_MAX (32 * 1024)
/* A request must have arrived whole (line, headers, body) within this long of its
 * connection's accept or of the previous answer on it, or the connection is closed. */
#define API_RECEIVE_TIMEOUT_USEC (10 * USEC_PER_SEC)
/* A request not answered within this long of its arrival (the loop was busy, the database
 * locked) gets 503 with Retry-After, and nothing of it is done. */
#define API_ANSWER_TIMEOUT_USEC (3 * USEC_PER_SEC)
/* Connections a socket serves at once; the listener queues those beyond. */
#define API_CONNECTIONS_MAX 1024
/* Connections of one run on the agent socket (processes of no run count as one peer), and
 * of one uid on the operator socket; more are closed as they are accepted. */
#define API_CONNECTIONS_PER_RUN 32
#define API_CONNECTIONS_PER_UID 512

/* Who the callers on a socket are (design §7). */
typedef enum ApiKind {
        API_OPERATOR, /* the board, whoever connects: the socket's mode says who can */
        API_AGENT, /* the agent of the running run whose process connected; anyone else is refused */
        API_METRICS, /* a TCP listener for GET /metrics alone, to whoever reaches it (Prometheus) */
} ApiKind;

/* At shutdown, before the Apis: every event stream ends (api-events.c). */
void api_events_done(Control *ctl);
/* Output of a watched run, for the streams that asked for it (run.log events). */
void api_events_on_output(Control *ctl, const char *run_id, int stream, const char *data, size_t size);

/* Serve on listen_fd (a bound, listening stream socket; the Api does not close it). */
int api_new(Control *ctl, int listen_fd, ApiKind kind, Api **ret);
Api *api_free(Api *a);
