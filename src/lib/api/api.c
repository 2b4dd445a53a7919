/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libmicrohttpd glue: the daemon runs in external-select mode with its own
 * epoll fd, which sits in the sd-event loop; a timer follows MHD's timeout.
 * Requests are routed by api_route_find() to the handlers of api-*.c.
 */
#include "api/api.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "api/api-common.h"
#include "basic/util.h"
#include "store/jsonmap.h"
#include "basic/log.h"
#include "control/caller.h"

struct Api {
        Control *ctl;
        ApiKind kind;
        struct MHD_Daemon *daemon;
        sd_event_source *io_source;
        sd_event_source *timer_source;
};

/* Per-connection state while a request body arrives. */
typedef struct Pending {
        char *body;
        size_t size;
        bool too_large;
} Pending;

const char *api_query(ApiRequest *req, const char *key) {
        return MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, key);
}

int api_reply(ApiRequest *req, unsigned status, cJSON *body) {
        if (!body)
                return -ENOMEM;
        cJSON_Delete(req->reply);
        req->reply = body;
        req->status = status;
        return 0;
}

int api_reply_text(ApiRequest *req, unsigned status, char *text, const char *content_type) {
        if (!text)
                return -ENOMEM;
        free(req->reply_text);
        req->reply_text = text;
        req->reply_content_type = content_type;
        req->status = status;
        return 0;
}

int api_reply_error(ApiRequest *req, unsigned status, const char *format, ...) {
        char msg[1024];
        cJSON *o;
        va_list ap;

        va_start(ap, format);
        vsnprintf(msg, sizeof(msg), format, ap);
        va_end(ap);

        o = cJSON_CreateObject();
        if (!o || !cJSON_AddStringToObject(o, "error", msg)) {
                cJSON_Delete(o);
                return -ENOMEM;
        }
        return api_reply(req, status, o);
}

/* Queue a JSON reply; allow (may be NULL) becomes the Allow header of a 405. */
static enum MHD_Result send_json_allow(struct MHD_Connection *c, unsigned status, const cJSON *body, const char *allow) {
        struct MHD_Response *resp;
        enum MHD_Result ret;
        char *text = NULL;
        size_t len;

        text = body ? cJSON_PrintUnformatted(body) : NULL;
        if (!text)
                text = strdup("{\"error\":\"out of memory\"}");
        if (!text)
                return MHD_NO;
        len = strlen(text);
        resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(text);
                return MHD_NO;
        }
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        if (allow)
                (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
        ret = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* Queue a plain-text reply; takes ownership of text. */
static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, char *text, const char *content_type) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        enum MHD_Result ret;

        if (!resp) {
                free(text);
                return MHD_NO;
        }
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type ?: "text/plain");
        ret = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, const cJSON *body) {
        return send_json_allow(c, status, body, NULL);
}

static enum MHD_Result send_error_allow(struct MHD_Connection *c, unsigned status, const char *msg, const char *allow) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();

        if (o)
                cJSON_AddStringToObject(o, "error", msg);
        return send_json_allow(c, status, o, allow);
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *msg) {
        return send_error_allow(c, status, msg, NULL);
}

/* Match path against a pattern; fills params with copies of the ":x" segments. */
/* Who a connection is, fixed when it was accepted. */
typedef struct Peer {
        uid_t uid;
        pid_t pid;
        char *run_id; /* agent socket: the run whose process connected; NULL: refused */
} Peer;

static Peer *peer_free(Peer *p) {
        if (p) {
                free(p->run_id);
                free(p);
        }
        return NULL;
}

/* A connection starts: on the agent socket, its peer is a process of a running run, or
 * nobody (every request it sends is refused). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code) {
        Api *a = cls;
        const union MHD_ConnectionInfo *info;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        Peer *p;
        int r;

        if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
                *socket_context = peer_free(*socket_context);
                return;
        }
        p = calloc(1, sizeof(Peer));
        if (!p)
                return; /* no context: refused like an unknown peer */
        p->uid = (uid_t) -1;
        info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (info && getsockopt(info->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) >= 0) {
                p->uid = cred.uid;
                p->pid = cred.pid;
        }
        if (a->kind == API_AGENT && info) {
                r = control_identify_peer(a->ctl, info->connect_fd, &p->run_id);
                if (r < 0)
                        log_warning_errno(r, "Agent socket: cannot identify peer %d (uid %d), refusing it: %m", (int) p->pid,
                                          (int) p->uid);
                else if (!p->run_id)
                        log_notice("Agent socket: peer %d (uid %d) is no process of a running run; refusing it.", (int) p->pid,
                                   (int) p->uid);
        }
        *socket_context = p;
}

static enum MHD_Result dispatch(Api *a, struct MHD_Connection *c, const char *url, const char *method, Pending *pending) {
        _cleanup_json_ cJSON *body = NULL;
        const ApiRoute *route = NULL;
        bool path_known = false;
        char *params[API_PARAMS_MAX] = {};
        char allow[64] = "";
        enum MHD_Result ret;
        int r;

        route = api_route_find(method, url, params, allow, sizeof(allow), &path_known);
        if (!route) {
                log_debug("%s %s: %s", method, url, path_known ? "method not allowed" : "no such route");
                return path_known ? send_error_allow(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", allow)
                                  : send_error(c, MHD_HTTP_NOT_FOUND, "no such route");
        }

        if (pending->size > 0) {
                const char *end = NULL;
                char msg[128];

                body = cJSON_ParseWithLengthOpts(pending->body, pending->size, &end, false);
                if (body && end)
                        end += strspn(end, " \t\r\n");
                if (!body || end != pending->body + pending->size) {
                        api_params_free(params);
                        snprintf(msg, sizeof(msg), "malformed JSON at byte %td", end ? end - pending->body : (ptrdiff_t) 0);
                        return send_error(c, MHD_HTTP_BAD_REQUEST, msg);
                }
        }

        ApiRequest req = {
                .ctl = a->ctl,
                .method = method,
                .path = url,
                .body = body,
                .connection = c,
        };
        memcpy(req.params, params, sizeof(params));
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        const Peer *peer = info ? info->socket_context : NULL;
        req.peer_uid = peer ? peer->uid : (uid_t) -1;
        req.peer_pid = peer ? peer->pid : 0;
        if (a->kind == API_AGENT) {
                /* The run must still be running: a process its run left behind speaks for nobody. */
                r = peer && peer->run_id ? control_identify_caller(a->ctl, peer->run_id, &req.caller_run_id, &req.caller_agent_id,
                                                                   &req.caller_company_id)
                                         : 0;
                if (r < 0 || !req.caller_agent_id) {
                        if (r < 0)
                                log_warning_errno(r, "Agent socket: cannot check run %s, refusing the request: %m",
                                                  strna(peer->run_id));
                        api_params_free(req.params);
                        free(req.caller_run_id);
                        free(req.caller_agent_id);
                        free(req.caller_company_id);
                        return send_error(c, MHD_HTTP_FORBIDDEN,
                                          "this socket serves the processes of running runs only, and this peer is none");
                }
        }

        r = route->handler(&req);
        if (r < 0) {
                log_error_errno(r, "%s %s failed: %m", method, url);
                (void) api_reply_error(&req, r == -EBUSY ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_INTERNAL_SERVER_ERROR,
                                       "internal error: %s", strerror(-r));
        } else if (!req.reply && !req.reply_text)
                (void) api_reply_error(&req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error: handler gave no reply");

        log_debug("%s %s -> %u", method, url, req.status);
        if (req.reply_text && !req.reply)
                ret = send_text(c, req.status, TAKE_PTR(req.reply_text), req.reply_content_type);
        else
                ret = send_json(c, req.status ?: MHD_HTTP_INTERNAL_SERVER_ERROR, req.reply);
        free(req.reply_text);
        cJSON_Delete(req.reply);
        api_params_free(req.params);
        free(req.caller_run_id);
        free(req.caller_agent_id);
        free(req.caller_company_id);
        return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size, void **con_cls) {
        Api *a = cls;
        Pending *p = *con_cls;

        if (!p) {
                const char *cl;
                uint64_t len;

                p = calloc(1, sizeof(Pending));
                if (!p)
                        return MHD_NO;
                *con_cls = p;
                cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                if (cl && safe_atou64(cl, &len) >= 0 && len > API_BODY_MAX)
                        /* Refuse before reading the body at all. */
                        return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than 1 MiB");
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                if (!p->too_large && p->size + *upload_data_size > API_BODY_MAX) {
                        p->too_large = true;
                        free(p->body);
                        p->body = NULL;
                        p->size = 0;
                }
                if (!p->too_large) {
                        char *t = realloc(p->body, p->size + *upload_data_size + 1);
                        if (!t)
                                return MHD_NO;
                        memcpy(t + p->size, upload_data, *upload_data_size);
                        p->body = t;
                        p->size += *upload_data_size;
                        p->body[p->size] = 0;
                }
                *upload_data_size = 0;
                return MHD_YES;
        }

        if (p->too_large)
                return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than 1 MiB");
        return dispatch(a, c, url, method, p);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
        Pending *p = *con_cls;

        if (p) {
                free(p->body);
                free(p);
                *con_cls = NULL;
        }
}

static void api_run(Api *a);

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        api_run(userdata);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        api_run(userdata);
        return 0;
}

/* Let MHD do its work, then arm the timer for whatever it wants to do next without an fd event. */
static void api_run(Api *a) {
        MHD_UNSIGNED_LONG_LONG timeout_ms;
        int r;

        (void) MHD_run(a->daemon);

        if (MHD_get_timeout(a->daemon, &timeout_ms) == MHD_YES) {
                r = sd_event_source_set_time_relative(a->timer_source, (uint64_t) timeout_ms * 1000);
                if (r >= 0)
                        r = sd_event_source_set_enabled(a->timer_source, SD_EVENT_ONESHOT);
                if (r < 0)
                        log_warning_errno(r, "Failed to arm HTTP timer, ignoring: %m");
        } else
                (void) sd_event_source_set_enabled(a->timer_source, SD_EVENT_OFF);
}

static void on_mhd_panic(void *cls, const char *file, unsigned line, const char *reason) {
        log_error("libmicrohttpd internal error at %s:%u: %s", strna(file), line, strna(reason));
        abort();
}

int api_new(Control *ctl, int listen_fd, ApiKind kind, Api **ret) {
        Api *a;
        const union MHD_DaemonInfo *info;
        int r;

        a = calloc(1, sizeof(Api));
        if (!a)
                return -ENOMEM;
        a->ctl = ctl;
        a->kind = kind;

        MHD_set_panic_func(on_mhd_panic, NULL);
        /* A connection's memory pool holds its headers and read buffer (bodies are copied out
         * as they arrive). Up to 32 KiB, libmicrohttpd takes it from malloc; above, it maps
         * fresh pages for every connection and faults each one in, which cost more than
         * the rest of a small request. MHD_USE_TURBO reads a request as soon as its
         * connection is accepted, instead of one loop iteration later, and skips
         * shutdown() before close, which a Unix socket does not need. */
        a->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_access, a,
                                     MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
                                     MHD_OPTION_NOTIFY_CONNECTION, on_connection, a, MHD_OPTION_CONNECTION_LIMIT, (unsigned) 1024,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 120, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                     (size_t) 32 * 1024, MHD_OPTION_END);
        if (!a->daemon) {
                api_free(a);
                return log_error_errno(-EIO, "Failed to start the HTTP server on the API socket.");
        }

        info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info) {
                api_free(a);
                return log_error_errno(-EIO, "libmicrohttpd gave no epoll fd.");
        }
        r = sd_event_add_io(ctl->event, &a->io_source, info->epoll_fd, EPOLLIN, on_io, a);
        if (r >= 0)
                r = sd_event_add_time_relative(ctl->event, &a->timer_source, CLOCK_MONOTONIC, 0, 0, on_timer, a);
        if (r < 0) {
                api_free(a);
                return log_error_errno(r, "Failed to add the HTTP server to the event loop: %m");
        }
        (void) sd_event_source_set_description(a->io_source, "api-io");
        (void) sd_event_source_set_description(a->timer_source, "api-timer");
        api_run(a);

        *ret = a;
        return 0;
}

Api *api_free(Api *a) {
        if (!a)
                return NULL;
        sd_event_source_disable_unref(a->io_source);
        sd_event_source_disable_unref(a->timer_source);
        if (a->daemon) {
                /* The listening socket belongs to the manager: take it back before stopping. */
                (void) MHD_quiesce_daemon(a->daemon);
                MHD_stop_daemon(a->daemon);
        }
        free(a);
        return NULL;
}
