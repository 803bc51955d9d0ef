/* The app's user from the OCI `user` string, resolved in the image's own /etc/passwd and /etc/group
   (read directly: glibc's NSS cannot be used from a static binary, and the image is what counts).
   The rules follow runc: a numeric uid not in passwd runs with gid 0 and HOME /; supplementary
   groups are the groups that list the user by name. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "init.h"

#define DB_MAX (4u << 20)

/* Splits a colon-separated line into at most max fields; returns how many. */
static size_t split(char *line, char **fields, size_t max)
{
    size_t n = 0;
    fields[n++] = line;
    for (char *p = line; *p && n < max; p++) {
        if (*p == ':') {
            *p = 0;
            fields[n++] = p + 1;
        }
    }
    return n;
}

/* A uid or gid as runc reads it: decimal, leading zeros allowed ("0010" is 10), at most 2^32 - 2
   ((uid_t)-1 means "no change" to setuid). */
static int numeric(const char *s, unsigned long long *out)
{
    size_t len = strlen(s);
    while (len > 1 && *s == '0') {
        s++;
        len--;
    }
    return parse_decimal(s, len, 10, out) == 0 && *out <= 4294967294ull ? 0 : -1;
}

/* Iterates over the lines of a database file; the callback returns nonzero to stop. */
static int scan(const char *path, size_t nfields, int (*fn)(char **f, void *ctx), void *ctx)
{
    unsigned char *text;
    ssize_t len = read_file(path, DB_MAX, &text);
    if (len < 0)
        return -1;
    int found = 0;
    char *save = NULL;
    for (char *line = strtok_r((char *)text, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
        char *f[8];
        if (line[0] == '#' || split(line, f, nfields) != nfields)
            continue; /* comments and malformed lines are skipped, as libc does */
        found = fn(f, ctx);
    }
    free(text);
    return found;
}

struct passwd_query {
    const char *name;          /* by name, or */
    unsigned long long uid;    /* by uid when name is NULL */
    char found_name[256];
    unsigned long long found_uid, found_gid;
    char home[4096];
};

static int passwd_match(char **f, void *ctx)
{
    struct passwd_query *q = ctx;
    unsigned long long uid, gid;
    if (numeric(f[2], &uid) || numeric(f[3], &gid))
        return 0;
    if (q->name ? strcmp(f[0], q->name) != 0 : uid != q->uid)
        return 0;
    snprintf(q->found_name, sizeof q->found_name, "%s", f[0]);
    snprintf(q->home, sizeof q->home, "%s", f[5][0] ? f[5] : "/");
    q->found_uid = uid;
    q->found_gid = gid;
    return 1;
}

struct group_query {
    const char *name;
    unsigned long long gid;
};

static int group_match(char **f, void *ctx)
{
    struct group_query *q = ctx;
    unsigned long long gid;
    if (numeric(f[2], &gid) || strcmp(f[0], q->name) != 0)
        return 0;
    q->gid = gid;
    return 1;
}

struct member_query {
    const char *user;
    struct app_user *u;
};

static int member_match(char **f, void *ctx)
{
    struct member_query *q = ctx;
    unsigned long long gid;
    if (numeric(f[2], &gid))
        return 0;
    char *save = NULL;
    for (char *m = strtok_r(f[3], ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        if (strcmp(m, q->user) != 0)
            continue;
        struct app_user *u = q->u;
        for (size_t i = 0; i < u->ngroups; i++)
            if (u->groups[i] == (gid_t)gid)
                return 0;
        if (u->ngroups < USER_MAX_GROUPS)
            u->groups[u->ngroups++] = (gid_t)gid;
        return 0;
    }
    return 0; /* keep scanning: every group counts */
}

#define FAIL(...) (snprintf(err, errlen, __VA_ARGS__), -1)

int user_resolve(const char *spec, struct app_user *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    strcpy(u->home, "/");
    if (!spec) {
        u->ngroups = 1; /* root: gid 0 only */
        return 0;
    }

    char buf[257];
    snprintf(buf, sizeof buf, "%s", spec);
    char *group = strchr(buf, ':');
    if (group)
        *group++ = 0;

    struct passwd_query pq = {0};
    unsigned long long uid;
    int by_uid = numeric(buf, &uid) == 0;
    if (by_uid)
        pq.uid = uid;
    else
        pq.name = buf;
    int found = scan("/etc/passwd", 7, passwd_match, &pq);
    if (!by_uid && found <= 0)
        return FAIL("user '%s': not in the image's /etc/passwd%s", buf, found < 0 ? " (no such file)" : "");
    if (found > 0) {
        u->uid = (uid_t)pq.found_uid;
        u->gid = (gid_t)pq.found_gid;
        snprintf(u->home, sizeof u->home, "%s", pq.home);
    } else {
        u->uid = (uid_t)uid;
        u->gid = 0;
    }

    if (group) {
        unsigned long long gid;
        if (numeric(group, &gid) == 0) {
            u->gid = (gid_t)gid;
        } else {
            struct group_query gq = {.name = group};
            int g = scan("/etc/group", 4, group_match, &gq);
            if (g <= 0)
                return FAIL("group '%s': not in the image's /etc/group%s", group, g < 0 ? " (no such file)" : "");
            u->gid = (gid_t)gq.gid;
        }
    }

    u->groups[0] = u->gid;
    u->ngroups = 1;
    if (found > 0) {
        struct member_query mq = {.user = pq.found_name, .u = u};
        scan("/etc/group", 4, member_match, &mq);
    }
    return 0;
}
