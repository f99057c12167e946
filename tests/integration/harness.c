/* SPDX-License-Identifier: MIT */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PLACE_BODY_MAX 256

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: harness check failed: %s (%s)\n", __FILE__, __LINE__, #cond,   \
                    strerror(errno));                                                              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Every process the harness starts, so that none outlives the test program: a failed
 * assertion jumps past the test's own stop calls, and the atexit handler ends what is left. */
#define MAX_CHILDREN 64
static pid_t children[MAX_CHILDREN];

static void kill_children(void)
{
    for (size_t i = 0; i < MAX_CHILDREN; i++)
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
}

static void child_started(pid_t pid)
{
    static bool registered;
    if (!registered) {
        atexit(kill_children);
        registered = true;
    }
    for (size_t i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == 0) {
            children[i] = pid;
            return;
        }
}

static void child_ended(pid_t pid)
{
    for (size_t i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == pid)
            children[i] = 0;
}

/* Kills a child that is still there and reaps it; *pid becomes 0. */
static void child_kill(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    child_ended(*pid);
    *pid = 0;
}

long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether `name` is an executable file in one of PATH's folders. */
static bool on_path(const char *name)
{
    const char *path = getenv("PATH");
    char file[4096];
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *end = strchrnul(p, ':');
        int n = snprintf(file, sizeof(file), "%.*s/%s", end > p ? (int)(end - p) : 1,
                         end > p ? p : ".", name);
        if (n > 0 && (size_t)n < sizeof(file) && access(file, X_OK) == 0)
            return true;
        if (!*end)
            return false;
        p = end + 1;
    }
}

void harness_skip_unless_runnable(void)
{
    if (!on_path("systemd-socket-activate")) {
        printf("skipped: needs systemd-socket-activate on PATH (Debian package systemd), which "
               "starts the daemon socket-activated\n");
        exit(77);
    }
}

static const char *env_or_die(const char *name)
{
    const char *v = getenv(name);
    if (!v) {
        fprintf(stderr, "%s is not set (run the tests with meson test)\n", name);
        abort();
    }
    return v;
}

const char *argus_binary(void)
{
    return env_or_die("ARGUS_BINARY");
}

void standin_start(Standin *s)
{
    standin_start_port(s, 0);
}

void standin_start_port(Standin *s, unsigned port)
{
    char port_arg[16];
    snprintf(port_arg, sizeof(port_arg), "%u", port);
    int p[2];
    CHECK(pipe(p) == 0);
    s->pid = fork();
    CHECK(s->pid >= 0);
    if (s->pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        execl(env_or_die("ARGUS_STANDIN"), "argus-worker-standin", port_arg, "127.0.0.1",
              (char *)NULL);
        _exit(127);
    }
    child_started(s->pid);
    close(p[1]);
    char buf[64] = "";
    size_t have = 0;
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    while (!strchr(buf, '\n') && have + 1 < sizeof(buf) && poll(&pfd, 1, 5000) > 0) {
        ssize_t k = read(p[0], buf + have, sizeof(buf) - 1 - have);
        if (k <= 0)
            break;
        have += (size_t)k;
        buf[have] = '\0';
    }
    close(p[0]);
    CHECK(sscanf(buf, "PORT=%u", &s->port) == 1);
    snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%u", s->port);
}

void standin_stop(Standin *s)
{
    child_kill(&s->pid);
}

Standin group_standin;

int standin_group_setup(void **state)
{
    (void)state;
    standin_start(&group_standin);
    return 0;
}

int standin_group_teardown(void **state)
{
    (void)state;
    standin_stop(&group_standin);
    return 0;
}

Service group_service;

int service_group_setup(void **state)
{
    standin_group_setup(state);
    service_start_for_group(&group_service, NULL, NULL, NULL);
    return 0;
}

int service_group_teardown(void **state)
{
    CHECK(service_stop(&group_service, SIGTERM) == 0);
    service_cleanup(&group_service);
    return standin_group_teardown(state);
}

unsigned standin_count(const Standin *s, const char *place_id)
{
    char url[1200];
    snprintf(url, sizeof(url), "%s/count?placeId=%s", s->url, place_id);
    Response r = http_request("GET", url, NULL, NULL, NULL);
    unsigned n = 0;
    if (r.status == 200 && r.body)
        sscanf(r.body, "{\"count\":%u}", &n);
    response_free(&r);
    return n;
}

char *standin_get(const Standin *s, const char *path)
{
    char url[1200];
    snprintf(url, sizeof(url), "%s%s", s->url, path);
    Response r = http_request("GET", url, NULL, NULL, NULL);
    char *body = NULL;
    if (r.status == 200) {
        body = r.body ? r.body : strdup("");
        r.body = NULL;
    }
    response_free(&r);
    return body;
}

char *standin_order(const Standin *s)
{
    return standin_get(s, "/order");
}

unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(sa);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sa, &l) == 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static bool port_listening(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

int raw_connect(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    return fd;
}

size_t raw_read(int fd, char *buf, size_t n, int timeout_ms)
{
    size_t have = 0;
    long long deadline = now_ms() + timeout_ms;
    buf[0] = '\0';
    while (have + 1 < n) {
        long long left = deadline - now_ms();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        ssize_t k = read(fd, buf + have, n - 1 - have);
        if (k <= 0)
            break;
        have += (size_t)k;
        buf[have] = '\0';
    }
    return have;
}

int keepalive_connection(unsigned port)
{
    int fd = raw_connect(port);
    static const char req[] = "GET /health HTTP/1.1\r\nHost: test\r\n\r\n";
    CHECK(write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1);
    char buf[2048];
    size_t have = 0;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    /* the answer is small: read until its JSON body closes */
    while (have < sizeof(buf) - 1 && poll(&pfd, 1, 5000) > 0) {
        ssize_t k = read(fd, buf + have, sizeof(buf) - 1 - have);
        CHECK(k > 0);
        have += (size_t)k;
        buf[have] = '\0';
        if (strstr(buf, "\r\n\r\n") && buf[have - 1] == '}')
            break;
    }
    CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    return fd;
}

bool peer_closed(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return false;
    char c;
    return read(fd, &c, 1) <= 0;
}

void service_start(Service *svc, const char *const *env)
{
    service_start_stderr(svc, env, -1);
}

void service_start_stderr(Service *svc, const char *const *env, int stderr_fd)
{
    memset(svc, 0, sizeof(*svc));
    snprintf(svc->dir, sizeof(svc->dir), "/tmp/argus-it-XXXXXX");
    CHECK(mkdtemp(svc->dir));
    snprintf(svc->log_path, sizeof(svc->log_path), "%s/stderr.log", svc->dir);
    snprintf(svc->notify_path, sizeof(svc->notify_path), "%s/notify", svc->dir);

    svc->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    CHECK(svc->notify_fd >= 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", svc->notify_path);
    CHECK(bind(svc->notify_fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);

    /* The port is free when chosen but may be taken before systemd-socket-activate binds it
     * (an outgoing connection gets ephemeral ports too): then it exits, and another is tried. */
    for (int attempt = 0; attempt < 5; attempt++) {
        svc->port = free_port();
        snprintf(svc->base, sizeof(svc->base), "http://127.0.0.1:%u", svc->port);

        const char *argv[64];
        char listen[64], notify[128];
        size_t n = 0;
        snprintf(listen, sizeof(listen), "127.0.0.1:%u", svc->port);
        snprintf(notify, sizeof(notify), "NOTIFY_SOCKET=%s", svc->notify_path);
        argv[n++] = "systemd-socket-activate";
        argv[n++] = "-l";
        argv[n++] = listen;
        argv[n++] = "-E";
        argv[n++] = notify;
        bool threads_given = false;
        for (size_t i = 0; env && env[i] && n < 60; i++) {
            argv[n++] = "-E";
            argv[n++] = env[i];
            threads_given |= strncmp(env[i], "THREADS=", 8) == 0;
        }
        /* The suite runs twice, with one event loop and with four (tests/integration/meson.build);
         * a test that sets THREADS itself keeps its own. */
        char threads[32];
        const char *t = getenv("ARGUS_TEST_THREADS");
        if (t && !threads_given) {
            snprintf(threads, sizeof(threads), "THREADS=%s", t);
            argv[n++] = "-E";
            argv[n++] = threads;
        }
        argv[n++] = argus_binary();
        argv[n] = NULL;

        svc->pid = fork();
        CHECK(svc->pid >= 0);
        if (svc->pid == 0) {
            int fd = stderr_fd >= 0
                         ? stderr_fd
                         : open(svc->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd >= 0)
                dup2(fd, STDERR_FILENO);
            int null = open("/dev/null", O_RDWR);
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
            execvp("systemd-socket-activate", (char *const *)argv);
            _exit(127);
        }
        child_started(svc->pid);
        /* systemd-socket-activate binds, then waits for the first connection to start the
         * daemon. */
        long long deadline = now_ms() + 5000;
        bool exited = false;
        while (!port_listening(svc->port) && now_ms() < deadline && !exited) {
            exited = waitpid(svc->pid, NULL, WNOHANG) == svc->pid;
            usleep(10000);
        }
        if (!exited)
            return;
        child_ended(svc->pid);
        svc->pid = 0;
    }
    CHECK(!"systemd-socket-activate could not listen on five ports in a row");
}

void service_start_for_group(Service *svc, const char *a, const char *b, const char *c)
{
    char worker[96];
    snprintf(worker, sizeof(worker), "WORKER_NODE_URL=%s", group_standin.url);
    const char *env[] = {worker, a, b, c, NULL};
    service_start(svc, env);
}

static void notify_drain(Service *svc)
{
    char buf[4096];
    ssize_t k;
    while ((k = recv(svc->notify_fd, buf, sizeof(buf) - 1, 0)) > 0) {
        buf[k] = '\0';
        size_t room = sizeof(svc->notified) - 1 - svc->notified_len;
        int w = snprintf(svc->notified + svc->notified_len, room + 1, "%s\n", buf);
        if (w > 0)
            svc->notified_len += (size_t)w < room ? (size_t)w : room;
    }
}

bool service_wait_notify(Service *svc, const char *what, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        notify_drain(svc);
        if (strstr(svc->notified, what))
            return true;
        long long left = deadline - now_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = svc->notify_fd, .events = POLLIN};
        poll(&pfd, 1, (int)(left < 100 ? left : 100));
    }
}

int service_wait_exit(Service *svc, int timeout_ms)
{
    if (svc->pid <= 0)
        return -1;
    long long deadline = now_ms() + timeout_ms;
    int st;
    for (;;) {
        pid_t p = waitpid(svc->pid, &st, WNOHANG);
        if (p == svc->pid) {
            child_ended(svc->pid);
            svc->pid = 0;
            notify_drain(svc);
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        if (now_ms() >= deadline)
            return -1;
        usleep(10000);
    }
}

int service_stop(Service *svc, int sig)
{
    if (svc->pid <= 0)
        return -1;
    kill(svc->pid, sig);
    int r = service_wait_exit(svc, 30000);
    child_kill(&svc->pid);
    return r;
}

static bool log_has(const Service *svc, const char *needle)
{
    FILE *f = fopen(svc->log_path, "re");
    if (!f)
        return false;
    char *line = NULL;
    size_t cap = 0;
    bool found = false;
    while (!found && getline(&line, &cap, f) > 0)
        found = strstr(line, needle) != NULL;
    free(line);
    fclose(f);
    return found;
}

bool service_log_contains(const Service *svc, const char *needle)
{
    long long deadline = now_ms() + 2000;
    do {
        if (log_has(svc, needle))
            return true;
        usleep(10000);
    } while (now_ms() < deadline);
    return false;
}

bool service_log_lacks(const Service *svc, const char *needle)
{
    return !log_has(svc, needle);
}

void service_cleanup(Service *svc)
{
    if (svc->pid > 0)
        service_stop(svc, SIGKILL);
    if (svc->notify_fd > 0)
        close(svc->notify_fd);
    svc->notify_fd = -1;
    if (getenv("ARGUS_KEEP_LOGS") == NULL) {
        unlink(svc->log_path);
        unlink(svc->notify_path);
        rmdir(svc->dir);
    } else
        fprintf(stderr, "daemon log kept in %s\n", svc->log_path);
}

typedef struct Buf {
    char *p;
    size_t len;
} Buf;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    Buf *b = userdata;
    size_t n = size * nmemb;
    char *q = realloc(b->p, b->len + n + 1);
    if (!q)
        return 0;
    memcpy(q + b->len, ptr, n);
    b->len += n;
    q[b->len] = '\0';
    b->p = q;
    return n;
}

typedef struct Easy {
    CURL *curl;
    struct curl_slist *headers;
    Buf body, head;
} Easy;

static void easy_setup(Easy *e, const char *method, const char *url, const char *content_type,
                       const char *body, const char *extra_header)
{
    memset(e, 0, sizeof(*e));
    e->curl = curl_easy_init();
    CHECK(e->curl);
    curl_easy_setopt(e->curl, CURLOPT_URL, url);
    curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &e->body);
    curl_easy_setopt(e->curl, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(e->curl, CURLOPT_HEADERDATA, &e->head);
    curl_easy_setopt(e->curl, CURLOPT_FORBID_REUSE, 1L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(e->curl, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(e->curl, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    char ct[256];
    snprintf(ct, sizeof(ct), "Content-Type:%s%s", content_type ? " " : "",
             content_type ? content_type : "");
    e->headers = curl_slist_append(e->headers, ct); /* "Content-Type:" removes curl's own */
    e->headers = curl_slist_append(e->headers, "Expect:");
    if (extra_header)
        e->headers = curl_slist_append(e->headers, extra_header);
    curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, e->headers);
}

static Response easy_finish(Easy *e, CURLcode code)
{
    Response r = {.curl_code = (int)code, .body = e->body.p, .headers = e->head.p};
    curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(e->headers);
    curl_easy_cleanup(e->curl);
    return r;
}

Response http_request(const char *method, const char *url, const char *content_type,
                      const char *body, const char *extra_header)
{
    Easy e;
    easy_setup(&e, method, url, content_type, body, extra_header);
    CURLcode c = curl_easy_perform(e.curl);
    return easy_finish(&e, c);
}

Response http_post_json(const Service *svc, const char *path, const char *body)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", svc->base, path);
    return http_request("POST", url, "application/json", body, NULL);
}

Response service_enqueue(const Service *svc, const char *place_id)
{
    char body[PLACE_BODY_MAX];
    snprintf(body, sizeof(body), "{\"placeId\":\"%s\"}", place_id);
    return http_post_json(svc, "/enqueue", body);
}

Response service_get(const Service *svc, const char *path)
{
    char url[160];
    snprintf(url, sizeof(url), "%s%s", svc->base, path);
    return http_request("GET", url, NULL, NULL, NULL);
}

void response_free(Response *r)
{
    free(r->body);
    free(r->headers);
    r->body = r->headers = NULL;
}

double service_metric(const Service *svc, const char *series)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/metrics", svc->base);
    Response r = http_request("GET", url, NULL, NULL, NULL);
    char ct[96];
    CHECK(r.status == 200 && response_header(&r, "Content-Type", ct, sizeof(ct)) &&
          strstr(ct, "text/plain; version=0.0.4"));
    double v = -1;
    size_t n = strlen(series);
    for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            v = strtod(p + n + 1, NULL);
    response_free(&r);
    return v;
}

bool service_wait_metric(const Service *svc, const char *series, double value, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    do {
        if (service_metric(svc, series) == value)
            return true;
        usleep(20 * 1000);
    } while (now_ms() < deadline);
    return false;
}

bool response_header(const Response *r, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t l = strcspn(v, "\r\n");
            if (l >= n)
                l = n - 1;
            memcpy(out, v, l);
            out[l] = '\0';
            return true;
        }
    }
    return false;
}

void http_post_parallel(const char *url, const char *const *bodies, size_t n, long *statuses,
                        char **bodies_out)
{
    CURLM *multi = curl_multi_init();
    Easy *e = calloc(n, sizeof(Easy));
    CHECK(multi && e);
    for (size_t i = 0; i < n; i++) {
        easy_setup(&e[i], "POST", url, "application/json", bodies[i], NULL);
        curl_multi_add_handle(multi, e[i].curl);
    }
    int running = 1;
    long long deadline = now_ms() + 60000;
    while (running && now_ms() < deadline) {
        curl_multi_perform(multi, &running);
        if (running)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        curl_multi_remove_handle(multi, e[i].curl);
        Response r = easy_finish(&e[i], CURLE_OK);
        statuses[i] = r.status;
        if (bodies_out)
            bodies_out[i] = r.body;
        else
            free(r.body);
        free(r.headers);
    }
    free(e);
    curl_multi_cleanup(multi);
}

int run_capture(const char *const *argv, const char *const *env, char *out, size_t n)
{
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        dup2(p[1], STDERR_FILENO);
        close(p[0]);
        close(p[1]);
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t have = 0;
    long long deadline = now_ms() + 10000;
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    out[0] = '\0';
    while (now_ms() < deadline && poll(&pfd, 1, 100) >= 0) {
        if (!(pfd.revents & (POLLIN | POLLHUP)))
            continue;
        char tmp[1024];
        ssize_t k = read(p[0], tmp, sizeof(tmp));
        if (k <= 0)
            break;
        size_t c = (size_t)k < n - 1 - have ? (size_t)k : n - 1 - have;
        memcpy(out + have, tmp, c);
        have += c;
        out[have] = '\0';
    }
    close(p[0]);
    int st;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -1;
        }
        usleep(10000);
    }
}

bool harness_sanitized(void)
{
    const char *v = getenv("ARGUS_SANITIZED");
    return v && strcmp(v, "1") == 0;
}

unsigned long process_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    unsigned long kib = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %lu kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}
