/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the input is NAME=VALUE lines, the environment that config_load reads through
 * its lookup (the last line for a name wins). Besides crashes, leaks and sanitizer reports, it
 * aborts when:
 * - config_load asks for a name that is not an environment variable name;
 * - a failure does not name a variable it read and the value that was given for it, or leaves
 *   memory in the Config;
 * - a value loaded for one of the variables of README.md's "Configuration" is not the one given (or
 * the documented default when none is);
 * - config_dump leaves out a variable that config_load read, or prints one twice;
 * - config_dump's output, loaded again, does not give the same Config and the same dump.
 * Variables that table does not list (src/core/config.c has more) are checked by the round trip
 * and, for numbers, by value. Built by scripts/fuzz. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz-config: invariant failed at %s:%d: %s\n", __FILE__, __LINE__,    \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* README.md's "Configuration" variables, with their documented defaults. */
enum {
    V_PORT,
    V_WORKER_NODE_URL,
    V_LOG_LEVEL,
    V_WORKER_TIMEOUT_MS,
    V_WORKER_RETRIES,
    V_WORKER_MAX_CONNECTIONS,
    V_MAX_BODY_BYTES,
    V_SHUTDOWN_TIMEOUT_SEC,
    V_IDLE_EXIT_SEC,
    V_HTTP2,
    N_SPEC_VARS,
};

static const struct {
    const char *name;
    const char *def;
} spec_vars[N_SPEC_VARS] = {
    [V_PORT] = {"PORT", "8080"},
    [V_WORKER_NODE_URL] = {"WORKER_NODE_URL", "http://localhost:3000"},
    [V_LOG_LEVEL] = {"LOG_LEVEL", "info"},
    [V_WORKER_TIMEOUT_MS] = {"WORKER_TIMEOUT_MS", "5000"},
    [V_WORKER_RETRIES] = {"WORKER_RETRIES", "2"},
    [V_WORKER_MAX_CONNECTIONS] = {"WORKER_MAX_CONNECTIONS", "64"},
    [V_MAX_BODY_BYTES] = {"MAX_BODY_BYTES", "16384"},
    [V_SHUTDOWN_TIMEOUT_SEC] = {"SHUTDOWN_TIMEOUT_SEC", "20"},
    [V_IDLE_EXIT_SEC] = {"IDLE_EXIT_SEC", "0"},
    [V_HTTP2] = {"HTTP2", "off"},
};

/* Room for the input's names and for the ones config_load asks for on top of them. */
#define ENV_INPUT_MAX 32
#define ENV_MAX 128

typedef struct Var {
    char *name;
    char *value;    /* NULL: not set */
    unsigned asked; /* lookups of this name by config_load */
} Var;

typedef struct Env {
    Var var[ENV_MAX];
    size_t n;
} Env;

static Var *env_find(Env *env, const char *name, size_t len)
{
    for (size_t i = 0; i < env->n; i++)
        if (strlen(env->var[i].name) == len && memcmp(env->var[i].name, name, len) == 0)
            return &env->var[i];
    return NULL;
}

static Var *env_add(Env *env, const char *name, size_t len, size_t max)
{
    Var *v = env_find(env, name, len);
    if (v || env->n >= max)
        return v;
    v = &env->var[env->n++];
    *v = (Var){.name = strndup(name, len)};
    CHECK(v->name);
    return v;
}

static bool is_var_name(const char *s, size_t len)
{
    if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static const char *lookup(const char *name, void *userdata)
{
    CHECK(name && is_var_name(name, strlen(name)));
    Var *v = env_add(userdata, name, strlen(name), ENV_MAX);
    CHECK(v);
    v->asked++;
    return v->value;
}

/* NAME=VALUE lines, the last one for a name winning; a NUL in a value ends it, as it would in
 * the environment. Lines without '=' or a valid name before it are ignored, and so are names
 * past the first ENV_INPUT_MAX. */
static void env_parse(Env *env, const char *s, size_t len)
{
    *env = (Env){0};
    while (len > 0) {
        const char *nl = memchr(s, '\n', len);
        size_t l = nl ? (size_t)(nl - s) : len;
        const char *eq = memchr(s, '=', l);
        if (eq && is_var_name(s, (size_t)(eq - s))) {
            Var *v = env_add(env, s, (size_t)(eq - s), ENV_INPUT_MAX);
            if (v) {
                free(v->value);
                v->value = strndup(eq + 1, l - (size_t)(eq - s) - 1);
                CHECK(v->value);
            }
        }
        s += l;
        len -= l;
        if (nl) {
            s++;
            len--;
        }
    }
}

static void env_done(Env *env)
{
    for (size_t i = 0; i < env->n; i++) {
        free(env->var[i].name);
        free(env->var[i].value);
    }
    env->n = 0;
}

static const char *env_value(Env *env, const char *name)
{
    Var *v = env_find(env, name, strlen(name));
    return v ? v->value : NULL;
}

/* A decimal number with nothing around it, saturated at UINT64_MAX; false otherwise. */
static bool ref_decimal(const char *s, uint64_t *ret)
{
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *ret = v;
    return true;
}

static uint64_t uint_field(const Config *c, int i)
{
    switch (i) {
    case V_PORT:
        return c->port;
    case V_WORKER_TIMEOUT_MS:
        return c->worker_timeout_ms;
    case V_WORKER_RETRIES:
        return c->worker_retries;
    case V_WORKER_MAX_CONNECTIONS:
        return c->worker_max_connections;
    case V_MAX_BODY_BYTES:
        return c->max_body_bytes;
    case V_SHUTDOWN_TIMEOUT_SEC:
        return c->shutdown_timeout_sec;
    case V_IDLE_EXIT_SEC:
        return c->idle_exit_sec;
    }
    abort();
}

static bool one_of_ci(const char *v, const char *const *words)
{
    for (; *words; words++)
        if (strcasecmp(v, *words) == 0)
            return true;
    return false;
}

/* Each of the documented variables was read and holds the value given, or the documented default.
 */
static void check_loaded(const Config *c, Env *env)
{
    for (int i = 0; i < N_SPEC_VARS; i++) {
        Var *var = env_find(env, spec_vars[i].name, strlen(spec_vars[i].name));
        CHECK(var && var->asked > 0);
        const char *v = var->value ? var->value : spec_vars[i].def;
        switch (i) {
        case V_LOG_LEVEL: {
            const char *name = log_level_to_string(c->log_level);
            CHECK(name);
            CHECK(strcasecmp(v, name) == 0 ||
                  (strcasecmp(v, "warning") == 0 && c->log_level == LOG_LEVEL_WARN));
            break;
        }
        case V_HTTP2: {
            static const char *const on[] = {"on", "1", "true", "yes", NULL};
            static const char *const off[] = {"off", "0", "false", "no", NULL};
            CHECK(c->http2 ? one_of_ci(v, on) : one_of_ci(v, off));
            break;
        }
        case V_WORKER_NODE_URL: {
            CHECK(c->worker_url && c->worker_enqueue);
            size_t l = strlen(c->worker_url);
            /* the value itself, less any trailing '/' */
            CHECK(l > 0 && strncmp(v, c->worker_url, l) == 0);
            CHECK(strspn(v + l, "/") == strlen(v + l));
            CHECK(c->worker_url[l - 1] != '/');
            CHECK(strncasecmp(v, "http://", 7) == 0 || strncasecmp(v, "https://", 8) == 0);
            for (const char *p = c->worker_url; *p; p++)
                CHECK(*p > ' ' && *p < 0x7f && !strchr("?#@\"\\", *p));
            CHECK(strncmp(c->worker_enqueue, c->worker_url, l) == 0);
            CHECK(strcmp(c->worker_enqueue + l, "/enqueue") == 0);
            break;
        }
        default: {
            uint64_t n;
            CHECK(ref_decimal(v, &n));
            CHECK(uint_field(c, i) == n);
            break;
        }
        }
    }
    CHECK(c->port != 0);
}

static bool config_equal(const Config *a, const Config *b)
{
    return a->port == b->port && strcmp(a->worker_url, b->worker_url) == 0 &&
           strcmp(a->worker_enqueue, b->worker_enqueue) == 0 && a->log_level == b->log_level &&
           a->worker_timeout_ms == b->worker_timeout_ms && a->worker_retries == b->worker_retries &&
           a->worker_max_connections == b->worker_max_connections &&
           a->max_body_bytes == b->max_body_bytes &&
           a->shutdown_timeout_sec == b->shutdown_timeout_sec &&
           a->idle_exit_sec == b->idle_exit_sec && a->http2 == b->http2 &&
           a->spool_max_jobs == b->spool_max_jobs &&
           (a->spool_dir && b->spool_dir ? strcmp(a->spool_dir, b->spool_dir) == 0
                                         : a->spool_dir == b->spool_dir);
}

/* Loads env; returns config_load's result, with the failure's invariants checked. */
static int load(Config *c, Env *env)
{
    const char *name = NULL, *value = NULL;
    memset(c, 0xa5, sizeof(*c)); /* config_load must not rely on a zeroed Config */
    int r = config_load(c, lookup, env, &name, &value);
    CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
    if (r == -EINVAL) {
        CHECK(name);
        Var *v = env_find(env, name, strlen(name));
        CHECK(v && v->asked > 0);
        /* the defaults are valid, so the value at fault is one that was given */
        CHECK(v->value && value == v->value);
    }
    if (r < 0)
        CHECK(!c->worker_url && !c->worker_enqueue);
    return r;
}

/* The dump is NAME=VALUE lines, each variable once, and it holds every variable that
 * config_load read. A number given is the number dumped. */
static void check_dump(const char *dump, Env *env)
{
    size_t dl = strlen(dump);
    CHECK(dl > 0 && dump[dl - 1] == '\n');
    Env seen = {0};
    for (const char *p = dump; *p;) {
        const char *nl = strchr(p, '\n');
        const char *eq = memchr(p, '=', (size_t)(nl - p));
        CHECK(eq && is_var_name(p, (size_t)(eq - p)));
        CHECK(!env_find(&seen, p, (size_t)(eq - p)));
        Var *s = env_add(&seen, p, (size_t)(eq - p), ENV_MAX);
        CHECK(s);
        s->value = strndup(eq + 1, (size_t)(nl - eq - 1));
        CHECK(s->value);
        p = nl + 1;
    }
    for (size_t i = 0; i < env->n; i++) {
        const Var *v = &env->var[i];
        if (!v->asked || strcmp(v->name, "STATE_DIRECTORY") == 0) /* systemd's: as SPOOL_DIR */
            continue;
        const char *d = env_value(&seen, v->name);
        CHECK(d);
        uint64_t given, dumped;
        if (v->value && ref_decimal(v->value, &given) && ref_decimal(d, &dumped))
            CHECK(given == dumped);
    }
    env_done(&seen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Env env;
    env_parse(&env, (const char *)data, size);

    Config c;
    int r = load(&c, &env);
    if (r == 0) {
        check_loaded(&c, &env);
        char *dump = NULL;
        CHECK(config_dump(&c, &dump) == 0 && dump);
        check_dump(dump, &env);

        /* Round trip: loading the dump gives the same Config and the same dump. */
        Env env2;
        env_parse(&env2, dump, strlen(dump));
        Config c2;
        CHECK(load(&c2, &env2) == 0);
        check_loaded(&c2, &env2);
        CHECK(config_equal(&c, &c2));
        char *dump2 = NULL;
        CHECK(config_dump(&c2, &dump2) == 0 && dump2);
        CHECK(strcmp(dump, dump2) == 0);

        free(dump2);
        free(dump);
        config_done(&c2);
        env_done(&env2);
    }
    config_done(&c);
    config_done(&c); /* idempotent */
    config_done(NULL);
    env_done(&env);
    return 0;
}
