/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The HTTP/1.1 JSON API on the Unix socket, served by libmicrohttpd from the
 * daemon's sd-event loop: no thread of its own, so handlers touch state from
 * the loop like everything else.
 */
#pragma once

typedef struct Api Api;
typedef struct Control Control;

/* Largest request body accepted; bigger ones get 413. */
#define API_BODY_MAX (1024 * 1024)

/* Who the callers on a socket are (design §7). */
typedef enum ApiKind {
        API_OPERATOR, /* the board, whoever connects: the socket's mode says who can */
        API_AGENT, /* the agent of the running run whose process connected; anyone else is refused */
} ApiKind;

/* Serve on listen_fd (a bound, listening stream socket; the Api does not close it). */
int api_new(Control *ctl, int listen_fd, ApiKind kind, Api **ret);
Api *api_free(Api *a);
