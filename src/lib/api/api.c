/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libmicrohttpd glue. The HTTP server runs in a thread of its own (libmicrohttpd's internal
 * poll() thread); the handlers run on the sd-event loop, like everything else that touches
 * corrald's state. A request crosses once each way:
 *
 *   HTTP thread: request line, headers and body read and checked against the limits
 *                (414, 431, 413 answered there, at once); then the connection is suspended
 *                and its Job queued, and an eventfd wakes the loop.
 *   loop:        the Job is routed and answered (or, when it waited too long or the
 *                database stayed locked past its deadline, refused with 503 and
 *                Retry-After); then the connection is resumed.
 *   HTTP thread: the answer is queued on the connection and sent.
 *
 * Why a thread: libmicrohttpd 0.9.75 in external epoll mode, as corrald used it, is edge
 * triggered and loses the edge of a connection whose request failed while its headers were
 * parsed, or whose body arrived in more than one read: such a connection was not looked at
 * again until its timeout (a 431 took 15 s, a 1 MiB body 11 s), and 1,024 of them stopped
 * the listener for good. Its internal thread with poll() is level triggered and keeps
 * accepting while the loop is busy; the hand-off keeps every handler single-threaded.
 *
 * What both threads touch is under Api.lock: the queue, the list of connections and a
 * Job's state. A Job's other fields belong to the HTTP thread while it is RECEIVING or
 * ANSWERED and to the loop while it is QUEUED or WAITING; a suspended connection is not
 * touched by libmicrohttpd, so the loop may read what the HTTP thread wrote before.
 */
#include "api/api.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "api/api-common.h"
#include "basic/fd-util.h"
#include "basic/json-text.h"
#include "basic/log.h"
#include "basic/time-util.h"
#include "basic/util.h"
#include "control/caller.h"
#include "store/jsonmap.h"

/* How much of a body over API_BODY_MAX is read (and dropped) to answer 413 at its end. */
#define API_BODY_DISCARD_MAX (8 * API_BODY_MAX)
/* How often the loop retries a request that found the database locked. */
#define API_RETRY_USEC (50 * 1000)
/* How often the loop looks for connections past their receive deadline. */
#define API_SWEEP_USEC USEC_PER_SEC

typedef struct Conn Conn;
typedef struct Job Job;

/* One accepted connection; created and freed by the HTTP thread, listed under Api.lock. */
struct Conn {
        int fd;
        uid_t uid;
        pid_t pid;
        char *run_id; /* agent socket: the run whose process connected (checked again per request); NULL: nobody */
        uint64_t since_usec; /* accepted, or its last answer queued: its next request is due within the deadline */
        bool handed_off; /* a request of it is with the loop: no deadline runs */
        bool streaming; /* its answer is a stream (GET /api/events): it has no next request to wait for */
        bool shut; /* shut down by corrald (cap or deadline): libmicrohttpd closes it */
        Conn *prev, *next;
};

typedef enum JobState {
        JOB_RECEIVING, /* HTTP thread: the request arrives */
        JOB_QUEUED, /* in Api.queue, for the loop */
        JOB_WAITING, /* the loop: waiting to retry against a locked database */
        JOB_ANSWERED, /* HTTP thread: response ready to be queued */
} JobState;

typedef struct ApiArg {
        char *key, *value;
} ApiArg;

/* One request, from its request line to its answer; owned by its connection (con_cls). */
struct Job {
        Api *api;
        struct MHD_Connection *connection;
        Conn *conn;
        JobState state;
        unsigned refuse_status; /* != 0: refused while it arrived (414, 431), answered at once */
        const char *refuse_msg;
        char *method, *url;
        ApiArg args[API_QUERY_ARGS_MAX];
        size_t n_args;
        char *body;
        size_t size;
        uint64_t received; /* of the body, kept or not */
        bool too_large;
        bool headers_seen;
        unsigned attempts; /* tries that found the database locked */
        uint64_t queued_usec;
        char *retry_state; /* what a handler keeps from one try to the next (ApiRequest) */
        struct MHD_Response *response;
        unsigned status;
        bool streaming; /* the response is an ApiStream's */
        Job *next; /* in Api.queue or Api.waiting */
};

struct Api {
        Control *ctl;
        ApiKind kind;
        struct MHD_Daemon *daemon;
        int wake_fd;
        sd_event_source *wake_source;
        sd_event_source *retry_source;
        sd_event_source *sweep_source;

        pthread_mutex_t lock;
        Job *queue, **queue_tail; /* HTTP thread -> loop */
        Conn *conns;
        bool stopping; /* no more hand-offs: requests get 503 in the HTTP thread */
        uint64_t refused_logged_usec; /* rate limit of the notice about refused connections */
        unsigned refused_since_log;

        Job *waiting; /* loop only: jobs that retry against a locked database */
};

const char *api_header(ApiRequest *req, const char *name) {
        const Job *j = req->connection;

        /* The connection is suspended while the loop has it: libmicrohttpd does not touch it. */
        return MHD_lookup_connection_value(j->connection, MHD_HEADER_KIND, name);
}

/* ---- streams ---- */

struct ApiStream {
        pthread_mutex_t lock;
        unsigned refs; /* the caller's and the response's */
        struct MHD_Connection *connection;
        char *buf;
        size_t start, end, allocated; /* what waits is buf[start..end) */
        bool suspended; /* the content reader found nothing and suspended the connection */
        bool closing, gone;
};

ApiStream *api_stream_unref(ApiStream *s) {
        bool last;

        if (!s)
                return NULL;
        pthread_mutex_lock(&s->lock);
        last = --s->refs == 0;
        pthread_mutex_unlock(&s->lock);
        if (last) {
                pthread_mutex_destroy(&s->lock);
                free(s->buf);
                free(s);
        }
        return NULL;
}

/* The HTTP thread asks for the next bytes. None: the connection is suspended until a write
 * resumes it (the pattern libmicrohttpd prescribes for a body that is not there yet). */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max) {
        ApiStream *s = cls;
        size_t n;

        pthread_mutex_lock(&s->lock);
        n = MIN(s->end - s->start, max);
        if (n == 0) {
                bool closing = s->closing;
                if (!closing) {
                        s->suspended = true;
                        MHD_suspend_connection(s->connection);
                }
                pthread_mutex_unlock(&s->lock);
                return closing ? MHD_CONTENT_READER_END_OF_STREAM : 0;
        }
        memcpy(out, s->buf + s->start, n);
        s->start += n;
        if (s->start == s->end)
                s->start = s->end = 0;
        pthread_mutex_unlock(&s->lock);
        return (ssize_t) n;
}

/* The connection is gone (or the stream ended): the response's reference goes. */
static void stream_freed(void *cls) {
        ApiStream *s = cls;

        pthread_mutex_lock(&s->lock);
        s->gone = true;
        pthread_mutex_unlock(&s->lock);
        api_stream_unref(s);
}

/* Resume the connection if the reader suspended it: outside the stream's lock, as
 * libmicrohttpd takes its own. A suspended connection is not closed by libmicrohttpd, so
 * it is still there. */
static void stream_wake(ApiStream *s, bool resume) {
        if (resume)
                MHD_resume_connection(s->connection);
}

/* Append to what waits; the connection is resumed now only if wake (else by api_stream_flush()). */
static int stream_append(ApiStream *s, const char *data, size_t size, bool force, bool wake) {
        bool resume;

        pthread_mutex_lock(&s->lock);
        if (s->gone || s->closing) {
                pthread_mutex_unlock(&s->lock);
                return -EPIPE;
        }
        if (!force && s->end - s->start + size > API_STREAM_BUFFER_MAX) {
                pthread_mutex_unlock(&s->lock);
                return -ENOBUFS;
        }
        if (s->start > 0 && s->end + size > s->allocated) {
                memmove(s->buf, s->buf + s->start, s->end - s->start);
                s->end -= s->start;
                s->start = 0;
        }
        if (s->end + size > s->allocated) {
                size_t a = MAX(s->allocated * 2, s->end + size);
                char *t = realloc(s->buf, a);
                if (!t) {
                        pthread_mutex_unlock(&s->lock);
                        return -ENOMEM;
                }
                s->buf = t;
                s->allocated = a;
        }
        memcpy(s->buf + s->end, data, size);
        s->end += size;
        resume = wake && s->suspended;
        if (resume)
                s->suspended = false;
        pthread_mutex_unlock(&s->lock);
        stream_wake(s, resume);
        return 0;
}

int api_stream_write(ApiStream *s, const char *data, size_t size, bool force) {
        return stream_append(s, data, size, force, true);
}

int api_stream_queue(ApiStream *s, const char *data, size_t size) {
        return stream_append(s, data, size, false, false);
}

void api_stream_flush(ApiStream *s) {
        bool resume;

        pthread_mutex_lock(&s->lock);
        resume = s->suspended && s->end > s->start;
        if (resume)
                s->suspended = false;
        pthread_mutex_unlock(&s->lock);
        stream_wake(s, resume);
}

void api_stream_close(ApiStream *s) {
        bool resume;

        pthread_mutex_lock(&s->lock);
        s->closing = true;
        resume = s->suspended;
        s->suspended = false;
        pthread_mutex_unlock(&s->lock);
        stream_wake(s, resume);
}

bool api_stream_gone(ApiStream *s) {
        bool gone;

        pthread_mutex_lock(&s->lock);
        gone = s->gone;
        pthread_mutex_unlock(&s->lock);
        return gone;
}

int api_reply_stream(ApiRequest *req, const char *content_type, ApiStream **ret) {
        const Job *j = req->connection;
        ApiStream *s = calloc(1, sizeof(ApiStream));

        if (!s)
                return -ENOMEM;
        if (pthread_mutex_init(&s->lock, NULL) != 0) {
                free(s);
                return -ENOMEM;
        }
        s->refs = 2; /* the caller's, and the request's until its response takes it */
        s->connection = j->connection;
        api_stream_unref(req->reply_stream);
        req->reply_stream = s;
        req->reply_content_type = content_type;
        req->status = MHD_HTTP_OK;
        *ret = s;
        return 0;
}

const char *api_query(ApiRequest *req, const char *key) {
        const Job *j = req->connection;

        for (size_t i = 0; i < j->n_args; i++)
                if (streq(j->args[i].key, key))
                        return j->args[i].value;
        return NULL;
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

/* A response of text (taken) with a content type; NULL when out of memory. */
static struct MHD_Response *response_text(char *text, const char *content_type) {
        struct MHD_Response *resp;

        if (!text)
                return NULL;
        resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(text);
                return NULL;
        }
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        return resp;
}

static struct MHD_Response *response_json(const cJSON *body) {
        char *text = body ? cJSON_PrintUnformatted(body) : NULL;
        return response_text(text ?: strdup("{\"error\":\"out of memory\"}"), "application/json");
}

static struct MHD_Response *response_error(const char *msg) {
        _cleanup_json_ cJSON *o = cJSON_CreateObject();

        if (o)
                cJSON_AddStringToObject(o, "error", msg);
        return response_json(o);
}

/* Answer c now, from the HTTP thread. */
static enum MHD_Result send_response(struct MHD_Connection *c, unsigned status, struct MHD_Response *resp) {
        enum MHD_Result ret;

        if (!resp)
                return MHD_NO; /* out of memory: libmicrohttpd closes the connection */
        ret = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *msg) {
        return send_response(c, status, response_error(msg));
}

/* 503 with Retry-After: the request was not carried out. */
static struct MHD_Response *response_unavailable(const char *msg) {
        struct MHD_Response *resp = response_error(msg);

        if (resp)
                (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
        return resp;
}

static Job *job_free(Job *j) {
        if (!j)
                return NULL;
        free(j->method);
        free(j->url);
        for (size_t i = 0; i < j->n_args; i++) {
                free(j->args[i].key);
                free(j->args[i].value);
        }
        free(j->body);
        free(j->retry_state);
        if (j->response)
                MHD_destroy_response(j->response);
        free(j);
        return NULL;
}

/* ---- HTTP thread ---- */

_printf_(2, 0) static void on_mhd_log(void *cls, const char *format, va_list ap) {
        char msg[512];

        vsnprintf(msg, sizeof(msg), format, ap);
        msg[strcspn(msg, "\n")] = 0;
        log_debug("HTTP: %s", msg);
}

/* The cap of connections for one peer: a run's processes on the agent socket (those of no
 * run count as one peer), one uid on the operator socket. */
static unsigned peer_cap(const Api *a) {
        if (a->kind != API_AGENT)
                return API_CONNECTIONS_PER_UID;
        return API_CONNECTIONS_PER_RUN;
}

static bool same_peer(const Api *a, const Conn *x, const Conn *y) {
        if (a->kind != API_AGENT)
                return x->uid == y->uid; /* every peer of the metrics listener is one: it has no uid */
        return streq_ptr(x->run_id, y->run_id);
}

/* A connection starts or ends. A peer over its cap is shut down at once: libmicrohttpd has
 * no way to refuse a connection it accepted, but reads end of file on a socket shut down
 * under it and closes it without sending anything. */
static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context, enum MHD_ConnectionNotificationCode code) {
        Api *a = cls;
        const union MHD_ConnectionInfo *info;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        unsigned same = 0;
        Conn *c;
        int r;

        if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
                c = *socket_context;
                if (!c)
                        return;
                /* Unlisted before libmicrohttpd closes the fd, so the loop never shuts down
                 * a descriptor that was reused meanwhile. */
                pthread_mutex_lock(&a->lock);
                if (c->prev)
                        c->prev->next = c->next;
                else
                        a->conns = c->next;
                if (c->next)
                        c->next->prev = c->prev;
                pthread_mutex_unlock(&a->lock);
                free(c->run_id);
                free(c);
                *socket_context = NULL;
                return;
        }

        info = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!info)
                return; /* no context: its requests are refused like an unknown peer's */
        c = calloc(1, sizeof(Conn));
        if (!c) {
                (void) shutdown(info->connect_fd, SHUT_RDWR);
                return;
        }
        c->fd = info->connect_fd;
        c->uid = (uid_t) -1;
        c->since_usec = now_mono_usec();
        if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) >= 0) {
                c->uid = cred.uid;
                c->pid = cred.pid;
        }
        if (a->kind == API_AGENT) {
                r = control_peer_run(a->ctl, c->fd, &c->run_id);
                if (r < 0)
                        log_warning_errno(r, "Agent socket: cannot identify peer %d (uid %d), refusing it: %m", (int) c->pid,
                                          (int) c->uid);
                else if (!c->run_id)
                        log_notice("Agent socket: peer %d (uid %d) is no process of a run; refusing it.", (int) c->pid,
                                   (int) c->uid);
        }

        pthread_mutex_lock(&a->lock);
        for (Conn *o = a->conns; o; o = o->next)
                if (!o->shut && same_peer(a, o, c))
                        same++;
        if (same >= peer_cap(a)) {
                uint64_t now = now_mono_usec();

                c->shut = true;
                (void) shutdown(c->fd, SHUT_RDWR);
                a->refused_since_log++;
                if (now - a->refused_logged_usec >= 10 * USEC_PER_SEC) {
                        log_notice(
                                "%s socket: refused %u connection(s) of peers over their cap of %u (latest: pid %d, uid %d%s%s).",
                                a->kind == API_AGENT             ? "Agent"
                                        : a->kind == API_METRICS ? "Metrics"
                                                                 : "Operator",
                                a->refused_since_log, peer_cap(a), (int) c->pid, (int) c->uid, c->run_id ? ", run " : "",
                                strempty(c->run_id));
                        a->refused_logged_usec = now;
                        a->refused_since_log = 0;
                }
        }
        c->next = a->conns;
        if (a->conns)
                a->conns->prev = c;
        a->conns = c;
        pthread_mutex_unlock(&a->lock);
        *socket_context = c;
}

/* The request line has arrived, before libmicrohttpd splits the query into arguments: the
 * Job starts here, so that a URL too long or with too many arguments is refused at once.
 * libmicrohttpd stores each argument in the connection's memory pool and, when that runs
 * out, neither answers nor closes; so an over-long query is cut off here, in the buffer
 * libmicrohttpd parses in place (it writes into it itself right after this call), and the
 * request answered 431 once its headers are in. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        Job *j = calloc(1, sizeof(Job));
        char *query;
        size_t n = 0;

        if (!j)
                return NULL;
        j->api = cls;
        j->connection = mc;
        j->conn = info ? info->socket_context : NULL;
        if (strlen(uri) > API_URL_MAX) {
                j->refuse_status = MHD_HTTP_URI_TOO_LONG;
                j->refuse_msg = "request URL longer than " STRINGIFY(API_URL_MAX) " bytes";
        }
        query = strchr(uri, '?');
        if (query) {
                for (const char *p = query + 1; *p; p++)
                        n += *p == '&';
                if (n + 1 > API_QUERY_ARGS_MAX && !j->refuse_status) {
                        j->refuse_status = MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE;
                        j->refuse_msg = "more than " STRINGIFY(API_QUERY_ARGS_MAX) " query arguments";
                }
                if (j->refuse_status)
                        query[1] = 0;
        }
        return j;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
        Job *j = cls;

        if (j->n_args >= API_QUERY_ARGS_MAX)
                return MHD_NO;
        j->args[j->n_args].key = strdup(key);
        j->args[j->n_args].value = strdup(value ?: "");
        if (!j->args[j->n_args].key || !j->args[j->n_args].value) {
                free(j->args[j->n_args].key);
                free(j->args[j->n_args].value);
                return MHD_NO;
        }
        j->n_args++;
        return MHD_YES;
}

/* The request is in: hand it to the loop. */
static enum MHD_Result hand_off(Api *a, Job *j, const char *url, const char *method) {
        static const uint64_t one = 1;

        j->method = strdup(method);
        j->url = strdup(url);
        if (!j->method || !j->url)
                return MHD_NO;
        (void) MHD_get_connection_values(j->connection, MHD_GET_ARGUMENT_KIND, collect_arg, j);

        pthread_mutex_lock(&a->lock);
        if (a->stopping) {
                pthread_mutex_unlock(&a->lock);
                return send_response(j->connection, MHD_HTTP_SERVICE_UNAVAILABLE, response_unavailable("corrald is stopping"));
        }
        /* Suspended before the loop can see it, so that it is never resumed first. The loop
         * never holds Api.lock and libmicrohttpd's lock at once, so taking the second
         * under the first here cannot deadlock. */
        MHD_suspend_connection(j->connection);
        j->state = JOB_QUEUED;
        j->queued_usec = now_mono_usec();
        if (j->conn)
                j->conn->handed_off = true;
        j->next = NULL;
        *a->queue_tail = j;
        a->queue_tail = &j->next;
        pthread_mutex_unlock(&a->lock);

        if (write(a->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                log_warning_errno(-errno, "Cannot wake the loop for a request: %m");
        return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size, void **con_cls) {
        Api *a = cls;
        Job *j = *con_cls;
        if (!j) {
                /* on_uri() found no memory */
                return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        }

        pthread_mutex_lock(&a->lock);
        if (j->state == JOB_ANSWERED) {
                struct MHD_Response *resp = TAKE_PTR(j->response);

                if (j->conn) {
                        j->conn->handed_off = false;
                        j->conn->since_usec = now_mono_usec();
                        j->conn->streaming = j->streaming;
                }
                pthread_mutex_unlock(&a->lock);
                return send_response(c, j->status, resp);
        }
        pthread_mutex_unlock(&a->lock);

        if (!j->headers_seen) {
                /* The first call: the headers are in, the body (if any) is not. */
                const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                uint64_t len;

                if (j->refuse_status)
                        return send_error(c, j->refuse_status, j->refuse_msg);
                if (cl && safe_atou64(cl, &len) >= 0 && len > API_BODY_MAX)
                        /* Refused before the body is read at all. */
                        return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than 1 MiB");
                j->headers_seen = true;
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                /* libmicrohttpd can answer only before or after a body: one over the limit
                 * (chunked, so not refused by its length) is read and dropped for the 413,
                 * up to a point; past it the connection is closed. */
                j->received += *upload_data_size;
                if (j->received > API_BODY_DISCARD_MAX)
                        return MHD_NO;
                if (!j->too_large && j->size + *upload_data_size > API_BODY_MAX) {
                        j->too_large = true;
                        j->body = mfree(j->body);
                        j->size = 0;
                }
                if (!j->too_large) {
                        char *t = realloc(j->body, j->size + *upload_data_size + 1);
                        if (!t)
                                return MHD_NO;
                        memcpy(t + j->size, upload_data, *upload_data_size);
                        j->body = t;
                        j->size += *upload_data_size;
                        j->body[j->size] = 0;
                }
                *upload_data_size = 0;
                return MHD_YES;
        }

        if (j->too_large)
                return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than 1 MiB");
        return hand_off(a, j, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
        *con_cls = job_free(*con_cls);
}

/* ---- loop ---- */

static void peer_of(const Job *j, uid_t *ret_uid, pid_t *ret_pid, const char **ret_run_id) {
        *ret_uid = j->conn ? j->conn->uid : (uid_t) -1;
        *ret_pid = j->conn ? j->conn->pid : 0;
        *ret_run_id = j->conn ? j->conn->run_id : NULL;
}

static void request_done(ApiRequest *req) {
        api_stream_unref(req->reply_stream);
        free(req->reply_text);
        free(req->next_cursor);
        cJSON_Delete(req->reply);
        api_params_free(req->params);
        free(req->caller_run_id);
        free(req->caller_agent_id);
        free(req->caller_company_id);
}

/* s percent-encoded but for RFC 3986's unreserved characters. */
static void put_encoded(FILE *f, const char *s) {
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-._~", c))
                        fputc(c, f);
                else
                        fprintf(f, "%%%02X", c);
        }
}

/* The next page of a list: its cursor alone (Next-Cursor), and the request's URL with its
 * query, after= replaced (Link, RFC 8288), for clients that follow links. */
static void add_next_page(const Job *j, struct MHD_Response *resp, const char *cursor) {
        _cleanup_free_ char *link = NULL;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        (void) MHD_add_response_header(resp, "Next-Cursor", cursor);
        f = open_memstream(&buf, &size);
        if (!f)
                return;
        fprintf(f, "<%s?", j->url);
        for (size_t i = 0; i < j->n_args; i++)
                if (!streq(j->args[i].key, "after")) {
                        put_encoded(f, j->args[i].key);
                        fputc('=', f);
                        put_encoded(f, j->args[i].value);
                        fputc('&', f);
                }
        fprintf(f, "after=%s>; rel=\"next\"", cursor);
        if (fclose(f) != 0) {
                free(buf);
                return;
        }
        link = buf;
        (void) MHD_add_response_header(resp, "Link", link);
}

/* Route and run j; its answer in j->response and j->status. -EAGAIN: the database stayed
 * locked, nothing was done, try again. */
static int answer(Api *a, Job *j) {
        _cleanup_json_ cJSON *body = NULL;
        const ApiRoute *route;
        const char *run_id;
        bool path_known = false;
        char *params[API_PARAMS_MAX] = {};
        char allow[64] = "";
        char msg[160];
        int r;

        /* The metrics listener serves that one route: nothing else of the API is on TCP. */
        if (a->kind == API_METRICS && !(streq(j->method, "GET") && streq(j->url, "/metrics"))) {
                j->status = MHD_HTTP_NOT_FOUND;
                j->response = response_error("this listener serves GET /metrics only");
                return 0;
        }
        route = api_route_find(j->method, j->url, params, allow, sizeof(allow), &path_known);
        if (!route) {
                log_debug("%s %s: %s", j->method, j->url, path_known ? "method not allowed" : "no such route");
                j->status = path_known ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND;
                j->response = response_error(path_known ? "method not allowed" : "no such route");
                if (j->response && path_known)
                        (void) MHD_add_response_header(j->response, MHD_HTTP_HEADER_ALLOW, allow);
                return 0;
        }

        if (j->size > 0) {
                const char *end = NULL;

                /* Before cJSON, which takes invalid UTF-8 as it is, ends a string at \u0000
                 * and keeps the last of duplicate keys. */
                if (json_text_check(j->body, j->size, msg, sizeof(msg)) < 0) {
                        api_params_free(params);
                        j->status = MHD_HTTP_BAD_REQUEST;
                        j->response = response_error(msg);
                        return 0;
                }
                body = cJSON_ParseWithLengthOpts(j->body, j->size, &end, false);
                if (body && end)
                        end += strspn(end, " \t\r\n");
                if (!body || end != j->body + j->size) {
                        api_params_free(params);
                        snprintf(msg, sizeof(msg), "malformed JSON at byte %td", end ? end - j->body : (ptrdiff_t) 0);
                        j->status = MHD_HTTP_BAD_REQUEST;
                        j->response = response_error(msg);
                        return 0;
                }
        }

        ApiRequest req = {
                .ctl = a->ctl,
                .method = j->method,
                .path = j->url,
                .body = body,
                .connection = j,
                .retry_state = &j->retry_state,
                .age_usec = now_mono_usec() - j->queued_usec,
        };
        memcpy(req.params, params, sizeof(params));
        peer_of(j, &req.peer_uid, &req.peer_pid, &run_id);
        if (a->kind == API_AGENT) {
                /* The run must still be running: a process its run left behind speaks for nobody. */
                r = run_id ? control_identify_caller(a->ctl, run_id, &req.caller_run_id, &req.caller_agent_id,
                                                     &req.caller_company_id)
                           : 0;
                if (r == -EAGAIN) {
                        request_done(&req);
                        return r;
                }
                if (r < 0 || !req.caller_agent_id) {
                        if (r < 0)
                                log_warning_errno(r, "Agent socket: cannot check run %s, refusing the request: %m", run_id);
                        request_done(&req);
                        j->status = MHD_HTTP_FORBIDDEN;
                        j->response =
                                response_error("this socket serves the processes of running runs only, and this peer is none");
                        return 0;
                }
        }

        r = route->handler(&req);
        if (r == -EAGAIN) {
                request_done(&req);
                return r;
        }
        if (r == -EACCES || r == -ENOSPC) {
                /* The store logged why; the client hears that its request is not at fault. */
                (void) api_reply_error(&req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                       "the database cannot be written (%s); nothing was done",
                                       r == -ENOSPC ? "its file system is full" : "it is read-only or not permitted");
        } else if (r == -EOWNERDEAD) {
                /* Fenced (store_set_fence()): this host may have been declared dead. */
                req.retry_after_sec = 5;
                (void) api_reply_error(&req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                       "this host has not renewed its lease and may have been declared dead by the "
                                       "others; it writes nothing until it has, nothing was done (corralctl host list)");
        } else if (r < 0) {
                log_error_errno(r, "%s %s failed: %m", j->method, j->url);
                (void) api_reply_error(&req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error: %s", strerror(-r));
        } else if (!req.reply && !req.reply_text && !req.reply_stream)
                (void) api_reply_error(&req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error: handler gave no reply");

        log_debug("%s %s -> %u", j->method, j->url, req.status);
        j->status = req.status ?: MHD_HTTP_INTERNAL_SERVER_ERROR;
        if (req.reply_stream) {
                /* Its reference goes to the response, which drops it when the connection does. */
                ApiStream *s = TAKE_PTR(req.reply_stream);
                j->response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, s, stream_freed);
                if (!j->response)
                        stream_freed(s); /* no client will read it: writes fail */
                else {
                        (void) MHD_add_response_header(j->response, MHD_HTTP_HEADER_CONTENT_TYPE, req.reply_content_type);
                        (void) MHD_add_response_header(j->response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
                        j->streaming = true;
                }
        } else if (req.reply_text && !req.reply)
                j->response = response_text(TAKE_PTR(req.reply_text), req.reply_content_type ?: "text/plain");
        else
                j->response = response_json(req.reply);
        if (j->response && req.next_cursor)
                add_next_page(j, j->response, req.next_cursor);
        if (j->response && req.retry_after_sec > 0) {
                char v[16];
                snprintf(v, sizeof(v), "%u", req.retry_after_sec);
                (void) MHD_add_response_header(j->response, MHD_HTTP_HEADER_RETRY_AFTER, v);
        }
        request_done(&req);
        return 0;
}

/* Give j back to the HTTP thread with its answer. */
static void give_back(Api *a, Job *j) {
        pthread_mutex_lock(&a->lock);
        j->state = JOB_ANSWERED;
        pthread_mutex_unlock(&a->lock);
        MHD_resume_connection(j->connection);
}

static void refuse_late(Job *j, const char *why) {
        j->status = MHD_HTTP_SERVICE_UNAVAILABLE;
        j->response = response_unavailable(why);
}

/* Answer j, or keep it to try again while the database is locked and its deadline allows. */
static void process(Api *a, Job *j) {
        uint64_t age = now_mono_usec() - j->queued_usec;
        int r;

        if (age > API_ANSWER_TIMEOUT_USEC && j->attempts == 0) {
                log_warning("%s %s waited %" PRIu64 " ms for corrald, refusing it with 503.", j->method, j->url, age / 1000);
                refuse_late(j, "corrald was busy and did not take this request in time; nothing was done, try again");
                give_back(a, j);
                return;
        }
        /* A retry that comes too late is not tried again: its client has been waiting. */
        r = age > API_ANSWER_TIMEOUT_USEC ? -EAGAIN : answer(a, j);
        if (r == -EAGAIN) {
                j->attempts++;
                if (age + API_RETRY_USEC > API_ANSWER_TIMEOUT_USEC) {
                        log_warning("%s %s: the database stayed locked for %" PRIu64 " ms, refusing it with 503.", j->method,
                                    j->url, age / 1000);
                        refuse_late(j, "the database is locked by another process; nothing was done, try again");
                        give_back(a, j);
                        return;
                }
                j->state = JOB_WAITING;
                j->next = a->waiting;
                a->waiting = j;
                if (sd_event_source_get_enabled(a->retry_source, NULL) == 0) {
                        (void) sd_event_source_set_time_relative(a->retry_source, API_RETRY_USEC);
                        (void) sd_event_source_set_enabled(a->retry_source, SD_EVENT_ONESHOT);
                }
                return;
        }
        give_back(a, j);
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Api *a = userdata;
        uint64_t n;
        Job *list, *next;

        (void) read(a->wake_fd, &n, sizeof(n));
        pthread_mutex_lock(&a->lock);
        list = a->queue;
        a->queue = NULL;
        a->queue_tail = &a->queue;
        pthread_mutex_unlock(&a->lock);
        for (Job *j = list; j; j = next) {
                next = j->next;
                process(a, j);
        }
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Api *a = userdata;
        Job *list = a->waiting, *next;

        /* Oldest first, as they came. */
        a->waiting = NULL;
        Job *rev = NULL;
        for (Job *j = list; j; j = next) {
                next = j->next;
                j->next = rev;
                rev = j;
        }
        for (Job *j = rev; j; j = next) {
                next = j->next;
                process(a, j);
        }
        return 0;
}

/* Shut down connections whose request did not arrive within the deadline (a peer that
 * sends a byte at a time would otherwise hold its connection for good). */
static int on_sweep(sd_event_source *s, uint64_t usec, void *userdata) {
        Api *a = userdata;
        uint64_t now = now_mono_usec();
        unsigned n = 0;

        pthread_mutex_lock(&a->lock);
        for (Conn *c = a->conns; c; c = c->next)
                if (!c->shut && !c->handed_off && !c->streaming && now - c->since_usec > API_RECEIVE_TIMEOUT_USEC) {
                        c->shut = true;
                        (void) shutdown(c->fd, SHUT_RDWR);
                        n++;
                }
        pthread_mutex_unlock(&a->lock);
        if (n > 0)
                log_debug("%s socket: closed %u connection(s) that sent no complete request within %u s.",
                          a->kind == API_AGENT             ? "Agent"
                                  : a->kind == API_METRICS ? "Metrics"
                                                           : "Operator",
                          n, (unsigned) (API_RECEIVE_TIMEOUT_USEC / USEC_PER_SEC));
        (void) sd_event_source_set_time_relative(s, API_SWEEP_USEC);
        return 0;
}

static void on_mhd_panic(void *cls, const char *file, unsigned line, const char *reason) {
        log_error("libmicrohttpd internal error at %s:%u: %s", strna(file), line, strna(reason));
        abort();
}

int api_new(Control *ctl, int listen_fd, ApiKind kind, Api **ret) {
        Api *a;
        int r;

        a = calloc(1, sizeof(Api));
        if (!a)
                return -ENOMEM;
        a->ctl = ctl;
        a->kind = kind;
        a->wake_fd = -EBADF;
        a->queue_tail = &a->queue;
        pthread_mutex_init(&a->lock, NULL);

        a->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (a->wake_fd < 0) {
                r = -errno;
                api_free(a);
                return log_error_errno(r, "Failed to create the API's eventfd: %m");
        }
        r = sd_event_add_io(ctl->event, &a->wake_source, a->wake_fd, EPOLLIN, on_wake, a);
        if (r >= 0)
                r = sd_event_add_time_relative(ctl->event, &a->retry_source, CLOCK_MONOTONIC, API_RETRY_USEC, 0, on_retry, a);
        if (r >= 0)
                r = sd_event_source_set_enabled(a->retry_source, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(ctl->event, &a->sweep_source, CLOCK_MONOTONIC, API_SWEEP_USEC, 0, on_sweep, a);
        if (r >= 0)
                r = sd_event_source_set_enabled(a->sweep_source, SD_EVENT_ON);
        if (r < 0) {
                api_free(a);
                return log_error_errno(r, "Failed to add the API to the event loop: %m");
        }
        (void) sd_event_source_set_description(a->wake_source, "api-wake");
        (void) sd_event_source_set_description(a->retry_source, "api-retry");
        (void) sd_event_source_set_description(a->sweep_source, "api-sweep");

        MHD_set_panic_func(on_mhd_panic, NULL);
        /* A connection's memory pool holds its request line, headers and read buffer (bodies
         * are copied out as they arrive): what does not fit gets 431. Up to 32 KiB
         * libmicrohttpd takes it from malloc. The idle timeout backs the receive deadline
         * of on_sweep() while the loop is busy. */
        a->daemon = MHD_start_daemon(
                MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                on_access, a, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, a, MHD_OPTION_LISTEN_SOCKET, listen_fd,
                MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_NOTIFY_CONNECTION, on_connection, a,
                MHD_OPTION_URI_LOG_CALLBACK, on_uri, a, MHD_OPTION_CONNECTION_LIMIT, (unsigned) API_CONNECTIONS_MAX,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) (API_RECEIVE_TIMEOUT_USEC / USEC_PER_SEC),
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) API_HEADERS_MAX, MHD_OPTION_END);
        if (!a->daemon) {
                api_free(a);
                return log_error_errno(-EIO, "Failed to start the HTTP server on the API socket.");
        }

        *ret = a;
        return 0;
}

/* At shutdown: answer every job of list 503. */
static void refuse_all(Api *a, Job *list) {
        for (Job *j = list, *next; j; j = next) {
                next = j->next;
                refuse_late(j, "corrald is stopping");
                give_back(a, j);
        }
}

Api *api_free(Api *a) {
        Job *list;

        if (!a)
                return NULL;
        if (a->daemon) {
                /* Requests the loop holds are answered 503, so that no connection stays
                 * suspended (libmicrohttpd refuses to stop then) and every client hears. */
                pthread_mutex_lock(&a->lock);
                a->stopping = true;
                list = a->queue;
                a->queue = NULL;
                a->queue_tail = &a->queue;
                pthread_mutex_unlock(&a->lock);
                refuse_all(a, list);
                refuse_all(a, TAKE_PTR(a->waiting));
                /* The listening socket belongs to the manager: take it back before stopping. */
                (void) MHD_quiesce_daemon(a->daemon);
                MHD_stop_daemon(a->daemon);
        }
        sd_event_source_disable_unref(a->wake_source);
        sd_event_source_disable_unref(a->retry_source);
        sd_event_source_disable_unref(a->sweep_source);
        safe_close(a->wake_fd);
        pthread_mutex_destroy(&a->lock);
        free(a);
        return NULL;
}
