/* The config disk (docs/guest.md, "Config disk"). src/Trc.Agent/Guest/GuestConfigReader.cs parses the
   same format with the same rules and the same messages; the tests hold the two to each other. Error
   messages name keys and byte offsets, never values (a value may be a secret). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "init.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

static int is_key_byte(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

static int check_env(const unsigned char *v, size_t len, size_t at, char *err, size_t errlen)
{
    const unsigned char *eq = memchr(v, '=', len);
    if (!eq || eq == v)
        return ERR("offset %zu: env: not NAME=VALUE", at);
    for (const unsigned char *p = v; p < eq; p++)
        if (*p < 0x21 || *p > 0x7e)
            return ERR("offset %zu: env: bad variable name", at);
    return 0;
}

/* NAME, UID, NAME:GROUP or UID:GID; each part non-empty, no ':' inside, no control bytes. */
static int check_user(const unsigned char *v, size_t len, size_t at, char *err, size_t errlen)
{
    size_t colons = 0, part = 0;
    if (len == 0 || len > 256)
        goto bad;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < 0x20 || v[i] == 0x7f)
            goto bad;
        if (v[i] == ':') {
            if (part == 0 || ++colons > 1)
                goto bad;
            part = 0;
        } else {
            part++;
        }
    }
    if (part == 0)
        goto bad;
    return 0;
bad:
    return ERR("offset %zu: user: not NAME, UID, NAME:GROUP or UID:GID", at);
}

static int check_hostname(const unsigned char *v, size_t len, size_t at, char *err, size_t errlen)
{
    if (len == 0 || len > 64)
        goto bad;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            goto bad;
    }
    return 0;
bad:
    return ERR("offset %zu: hostname: not 1 to 64 letters, digits, '-' or '.'", at);
}

static int check_volume(const unsigned char *v, size_t len, size_t at, char *err, size_t errlen)
{
    if (len == 0 || len > 63 || v[0] == '.')
        goto bad;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
            goto bad;
    }
    return 0;
bad:
    return ERR("offset %zu: volume: not 1 to 63 letters, digits, '-', '_' or '.', not starting with '.'", at);
}

/* Appends a list record's value, unless the list is full. */
static int list_add(const char *key, char ***list, size_t *n, size_t max, char *value, size_t at, char *err, size_t errlen)
{
    if (*n == max)
        return ERR("offset %zu: more than %zu %s records", at, max, key);
    if ((*n & (*n - 1)) == 0) /* grow at powers of two */
        *list = xrealloc(*list, (*n ? *n * 2 : 1) * sizeof **list);
    (*list)[(*n)++] = value;
    return 0;
}

/* The field of a key that may appear once (it holds the record's text once seen), or NULL. */
static const char **once_field(struct config *cfg, const char *key)
{
    return strcmp(key, "workdir") == 0    ? &cfg->workdir
           : strcmp(key, "user") == 0     ? &cfg->user
           : strcmp(key, "hostname") == 0 ? &cfg->hostname
           : strcmp(key, "ipv6") == 0     ? &cfg->ipv6_text
           : strcmp(key, "gateway") == 0  ? &cfg->gateway_text
           : strcmp(key, "mtu") == 0      ? &cfg->mtu_text
           : strcmp(key, "secrets") == 0  ? &cfg->secrets
                                          : NULL;
}

/* A text value: valid UTF-8 without NUL bytes. */
static int check_text(const char *key, const char *v, size_t len, size_t at, char *err, size_t errlen)
{
    if (memchr(v, 0, len))
        return ERR("offset %zu: %s: contains a NUL byte", at, key);
    if (!utf8_valid((const unsigned char *)v, len))
        return ERR("offset %zu: %s: not valid UTF-8", at, key);
    return 0;
}

/* An arg, env or volume record. */
static int apply_list(struct config *cfg, const char *key, char *v, size_t len, size_t at, char *err, size_t errlen)
{
    const unsigned char *u = (const unsigned char *)v;
    if (check_text(key, v, len, at, err, errlen))
        return -1;
    if (strcmp(key, "arg") == 0) {
        if (cfg->nargs == 0 && len == 0)
            return ERR("offset %zu: arg: the first arg (the program) is empty", at);
        return list_add(key, &cfg->args, &cfg->nargs, CONFIG_MAX_LIST, v, at, err, errlen);
    }
    if (strcmp(key, "env") == 0) {
        if (check_env(u, len, at, err, errlen))
            return -1;
        return list_add(key, &cfg->env, &cfg->nenv, CONFIG_MAX_LIST, v, at, err, errlen);
    }
    if (check_volume(u, len, at, err, errlen))
        return -1;
    for (size_t i = 0; i < cfg->nvolumes; i++)
        if (strcmp(cfg->volumes[i], v) == 0)
            return ERR("offset %zu: volume: duplicate name", at);
    return list_add(key, &cfg->volumes, &cfg->nvolumes, CONFIG_MAX_VOLUMES, v, at, err, errlen);
}

/* One record. v is NUL-terminated in place (its '\n' replaced). at is the header's offset. The checks
   run in the same order as GuestConfigReader's, so both report the same first problem. */
static int apply(struct config *cfg, const char *key, char *v, size_t len, size_t at, char *err, size_t errlen)
{
    if (strcmp(key, "arg") == 0 || strcmp(key, "env") == 0 || strcmp(key, "volume") == 0)
        return apply_list(cfg, key, v, len, at, err, errlen);
    const char **once = once_field(cfg, key);
    if (!once)
        return 0; /* unknown keys are ignored, so new ones can be added */
    if (*once)
        return ERR("offset %zu: duplicate %s record", at, key);
    if (once == &cfg->secrets) { /* any bytes */
        cfg->secrets = v;
        cfg->secrets_len = len;
        return 0;
    }
    if (check_text(key, v, len, at, err, errlen))
        return -1;

    if (once == &cfg->workdir) {
        if (len == 0 || v[0] != '/')
            return ERR("offset %zu: workdir: not an absolute path", at);
        if (len > CONFIG_MAX_WORKDIR)
            return ERR("offset %zu: workdir: longer than %d bytes", at, CONFIG_MAX_WORKDIR);
    } else if (once == &cfg->user) {
        if (check_user((const unsigned char *)v, len, at, err, errlen))
            return -1;
    } else if (once == &cfg->hostname) {
        if (check_hostname((const unsigned char *)v, len, at, err, errlen))
            return -1;
    } else if (once == &cfg->ipv6_text) {
        const char *slash = memchr(v, '/', len);
        unsigned long long prefix;
        if (!slash || parse_ipv6(v, (size_t)(slash - v), &cfg->ipv6) ||
            parse_decimal(slash + 1, len - (size_t)(slash - v) - 1, 3, &prefix) || prefix < 1 || prefix > 128)
            return ERR("offset %zu: ipv6: not ADDRESS/PREFIX", at);
        cfg->ipv6_prefix = (unsigned)prefix;
    } else if (once == &cfg->gateway_text) {
        if (parse_ipv6(v, len, &cfg->gateway))
            return ERR("offset %zu: gateway: not an IPv6 address", at);
    } else { /* mtu */
        unsigned long long mtu;
        if (parse_decimal(v, len, 5, &mtu) || mtu < 1280 || mtu > 65535)
            return ERR("offset %zu: mtu: not a number from 1280 to 65535", at);
        cfg->mtu = (unsigned)mtu;
    }
    *once = v;
    return 0;
}

static int too_large(char *err, size_t errlen)
{
    return ERR("offset %u: the disk is larger than %u bytes", CONFIG_MAX_DISK, CONFIG_MAX_DISK);
}

int config_parse(unsigned char *disk, size_t len, struct config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    if (len > CONFIG_MAX_DISK)
        return too_large(err, errlen);
    if (len < CONFIG_MAGIC_LEN || memcmp(disk, CONFIG_MAGIC, CONFIG_MAGIC_LEN) != 0)
        return ERR("offset 0: not a trc config disk (bad magic)");

    size_t pos = CONFIG_MAGIC_LEN;
    for (;;) {
        if (pos >= len)
            return ERR("offset %zu: missing end record", pos);

        /* Header: KEY SP LEN LF. The scans stop one byte past each limit, so "too long" is seen. */
        size_t i = pos;
        while (i < len && i - pos <= CONFIG_MAX_KEY && is_key_byte(disk[i]))
            i++;
        size_t klen = i - pos;
        if (i == len)
            return ERR("offset %zu: truncated record header", pos);
        if (klen == 0 || klen > CONFIG_MAX_KEY || disk[i] != ' ')
            return ERR("offset %zu: malformed record header", pos);
        size_t digits = ++i;
        while (i < len && i - digits <= 8 && disk[i] >= '0' && disk[i] <= '9')
            i++;
        if (i == len)
            return ERR("offset %zu: truncated record header", pos);
        unsigned long long vlen;
        if (disk[i] != '\n' || parse_decimal((const char *)disk + digits, i - digits, 8, &vlen))
            return ERR("offset %zu: malformed record header", pos);
        if (vlen > CONFIG_MAX_RECORD)
            return ERR("offset %zu: record length %llu is over %u", pos, vlen, CONFIG_MAX_RECORD);
        char key[CONFIG_MAX_KEY + 1];
        memcpy(key, disk + pos, klen);
        key[klen] = 0;
        size_t value = i + 1;
        if (len - value < vlen + 1)
            return ERR("offset %zu: record '%s' of %llu bytes runs past the end of the disk", pos, key, vlen);
        if (disk[value + vlen] != '\n')
            return ERR("offset %zu: record '%s' does not end with a newline", value + (size_t)vlen, key);

        if (strcmp(key, "end") == 0) {
            if (vlen != 0)
                return ERR("offset %zu: the end record is not empty", pos);
            for (size_t k = value + 1; k < len; k++)
                if (disk[k] != 0)
                    return ERR("offset %zu: non-zero byte after the end record", k);
            if (cfg->nargs == 0)
                return ERR("offset %zu: no arg record", pos);
            if (cfg->gateway_text && !cfg->ipv6_text)
                return ERR("offset %zu: gateway without ipv6", pos);
            return 0;
        }
        disk[value + vlen] = 0;
        if (apply(cfg, key, (char *)disk + value, (size_t)vlen, pos, err, errlen))
            return -1;
        pos = value + (size_t)vlen + 1;
    }
}

int config_load(const char *path, unsigned char **disk, struct config *cfg, char *err, size_t errlen)
{
    ssize_t len = read_file(path, CONFIG_MAX_DISK, disk);
    if (len < 0 && errno == EFBIG)
        return too_large(err, errlen);
    if (len < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -2;
    }
    if (config_parse(*disk, (size_t)len, cfg, err, errlen) < 0) {
        config_free(cfg);
        free(*disk);
        *disk = NULL;
        return -1;
    }
    return 0;
}

void config_free(struct config *cfg)
{
    free(cfg->args);
    free(cfg->env);
    free(cfg->volumes);
    memset(cfg, 0, sizeof *cfg);
}

static void print_hex(const char *key, const char *s)
{
    printf("%s ", key);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        printf("%02x", *p);
    printf("\n");
}

/* Prints "ok" and one line per record (values hex, secrets as a length), or "error: ...". */
static int check_one(const char *path)
{
    unsigned char *disk;
    struct config cfg;
    char err[256];
    int rc = config_load(path, &disk, &cfg, err, sizeof err);
    if (rc == -2) {
        fprintf(stderr, "init: %s\n", err);
        return 2;
    }
    if (rc < 0) {
        printf("error: %s\n", err);
        return 1;
    }
    printf("ok\n");
    for (size_t i = 0; i < cfg.nargs; i++)
        print_hex("arg", cfg.args[i]);
    for (size_t i = 0; i < cfg.nenv; i++)
        print_hex("env", cfg.env[i]);
    if (cfg.workdir)
        print_hex("workdir", cfg.workdir);
    if (cfg.user)
        print_hex("user", cfg.user);
    if (cfg.hostname)
        print_hex("hostname", cfg.hostname);
    if (cfg.ipv6_text)
        print_hex("ipv6", cfg.ipv6_text);
    if (cfg.gateway_text)
        print_hex("gateway", cfg.gateway_text);
    if (cfg.mtu)
        printf("mtu %u\n", cfg.mtu);
    if (cfg.secrets)
        printf("secrets %zu\n", cfg.secrets_len);
    for (size_t i = 0; i < cfg.nvolumes; i++)
        print_hex("volume", cfg.volumes[i]);
    config_free(&cfg);
    free(disk);
    return 0;
}

/* init --check-config FILE...: each file's result after a "file PATH" line. Exits 2 when a file
   could not be read, else 1 when any was refused, else 0. */
int config_check_main(int nfiles, char **files)
{
    int worst = 0;
    for (int i = 0; i < nfiles; i++) {
        printf("file %s\n", files[i]);
        int rc = check_one(files[i]);
        if (rc > worst)
            worst = rc;
    }
    return worst;
}
