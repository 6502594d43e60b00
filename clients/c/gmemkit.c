/*
 * gmemkit.c - the C client of `gmemkit serve` (see gmemkit.h): JSON-RPC 2.0, one message per
 * line, over a Unix socket or a pair of fds. libc only; a minimal JSON reader that finds the
 * fields of a reply, and a string builder for requests. Not thread-safe (one caller per
 * connection, like a vCPU thread and its fd).
 */
#define _POSIX_C_SOURCE 200809L
#include "gmemkit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct gmk {
  int rfd, wfd;
  char *buf;          /* bytes read, not yet consumed */
  size_t len, cap;
  char *line;         /* the last reply line (owned) */
  int next_handle, next_id;
  int rpc_code;
  char err[1024];
  gmk_event_fn on_event;
  void *event_ctx;
};

/* ------------------------------------------------------------ a string builder */

struct sb { char *p; size_t n, cap; int oom; };

static void sb_add(struct sb *s, const char *fmt, ...) {
  if (s->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(s->p ? s->p + s->n : NULL, s->p ? s->cap - s->n : 0, fmt, ap);
    va_end(ap);
    if (need < 0) { s->oom = 1; return; }
    if (s->p && s->n + (size_t)need < s->cap) { s->n += (size_t)need; return; }
    size_t cap = (s->cap ? s->cap * 2 : 256) + (size_t)need;
    char *p = realloc(s->p, cap);
    if (!p) { s->oom = 1; return; }
    s->p = p;
    s->cap = cap;
  }
}

/* A u64 as JSON: a number when exact in a double, else a decimal string (the server reads both). */
static void sb_u64(struct sb *s, const char *key, uint64_t v) {
  if (v <= (1ULL << 53)) sb_add(s, "%s\"%s\":%" PRIu64, s->n > 1 ? "," : "", key, v);
  else sb_add(s, "%s\"%s\":\"%" PRIu64 "\"", s->n > 1 ? "," : "", key, v);
}
static void sb_s64(struct sb *s, const char *key, int64_t v) {
  if (v <= (1LL << 53) && v >= -(1LL << 53)) sb_add(s, "%s\"%s\":%" PRId64, s->n > 1 ? "," : "", key, v);
  else sb_add(s, "%s\"%s\":\"%" PRId64 "\"", s->n > 1 ? "," : "", key, v);
}
static void sb_handle(struct sb *s, const char *key, int h) { sb_add(s, "%s\"%s\":\"h%d\"", s->n > 1 ? "," : "", key, h); }
static void sb_str(struct sb *s, const char *key, const char *v) { sb_add(s, "%s\"%s\":\"%s\"", s->n > 1 ? "," : "", key, v); }
static void sb_bool(struct sb *s, const char *key, int v) { sb_add(s, "%s\"%s\":%s", s->n > 1 ? "," : "", key, v ? "true" : "false"); }

/* ------------------------------------------------------------ a minimal JSON reader */

static const char *ws(const char *p) { while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++; return p; }

/* The end of the JSON value at p (NULL if malformed). */
static const char *skip(const char *p) {
  p = ws(p);
  if (*p == '"') {
    for (p++; *p && *p != '"'; p++) if (*p == '\\' && p[1]) p++;
    return *p ? p + 1 : NULL;
  }
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    p = ws(p + 1);
    if (*p == close) return p + 1;
    for (;;) {
      if (close == '}') { p = skip(p); if (!p) return NULL; p = ws(p); if (*p++ != ':') return NULL; }
      p = skip(p);
      if (!p) return NULL;
      p = ws(p);
      if (*p == ',') { p = ws(p + 1); continue; }
      return *p == close ? p + 1 : NULL;
    }
  }
  while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n') p++;
  return p;
}

/* The value of `key` in the object at obj (NULL if absent). */
static const char *find(const char *obj, const char *key) {
  if (!obj) return NULL;
  const char *p = ws(obj);
  if (*p != '{') return NULL;
  p = ws(p + 1);
  size_t klen = strlen(key);
  while (*p == '"') {
    const char *k = p + 1;
    const char *end = skip(p);
    if (!end) return NULL;
    p = ws(end);
    if (*p++ != ':') return NULL;
    p = ws(p);
    if ((size_t)(end - 1 - k) == klen && memcmp(k, key, klen) == 0) return p;
    p = skip(p);
    if (!p) return NULL;
    p = ws(p);
    if (*p != ',') return NULL;
    p = ws(p + 1);
  }
  return NULL;
}

/* A string value (escapes other than \" and \\ kept as written) into out. */
static int str_of(const char *v, char *out, size_t cap) {
  if (!v || *v != '"' || cap == 0) return -1;
  size_t n = 0;
  for (v++; *v && *v != '"'; v++) {
    if (*v == '\\' && (v[1] == '"' || v[1] == '\\')) v++;
    if (n + 1 < cap) out[n++] = *v;
  }
  out[n] = 0;
  return 0;
}

static int is(const char *v, const char *s) {
  char b[64];
  return str_of(v, b, sizeof b) == 0 && strcmp(b, s) == 0;
}

/* A number, or a decimal string of one (the outcome's bigints), as int64. */
static int64_t num_of(const char *v) {
  if (!v) return 0;
  if (*v == '"') v++;
  return strtoll(v, NULL, 10);
}

/* ------------------------------------------------------------ errno names */

static const struct { const char *name; int no; } ERRNOS[] = {
  {"EPERM", EPERM}, {"ENOENT", ENOENT}, {"EINTR", EINTR}, {"EIO", EIO}, {"EBADF", EBADF}, {"EAGAIN", EAGAIN},
  {"ENOMEM", ENOMEM}, {"EACCES", EACCES}, {"EFAULT", EFAULT}, {"EBUSY", EBUSY}, {"EEXIST", EEXIST},
  {"ENODEV", ENODEV}, {"EINVAL", EINVAL}, {"EMFILE", EMFILE}, {"ENOTTY", ENOTTY}, {"EFBIG", EFBIG},
  {"ESPIPE", ESPIPE}, {"EOPNOTSUPP", EOPNOTSUPP}, {"ESRCH", ESRCH}, {"ENXIO", ENXIO}, {"E2BIG", E2BIG},
  {"ECHILD", ECHILD}, {"EXDEV", EXDEV}, {"ENOTDIR", ENOTDIR}, {"EISDIR", EISDIR}, {"ENFILE", ENFILE},
  {"ETXTBSY", ETXTBSY}, {"ENOSPC", ENOSPC}, {"EROFS", EROFS}, {"EMLINK", EMLINK}, {"EPIPE", EPIPE},
  {"ERANGE", ERANGE}, {"EDEADLK", EDEADLK}, {"ENOSYS", ENOSYS}, {"EOVERFLOW", EOVERFLOW},
  {"ETIMEDOUT", ETIMEDOUT}, {"ECANCELED", ECANCELED},
#ifdef EHWPOISON
  {"EHWPOISON", EHWPOISON},
#endif
#ifdef ETIME
  {"ETIME", ETIME},
#endif
#ifdef EBADFD
  {"EBADFD", EBADFD},
#endif
};

static int errno_of(const char *v) {
  char name[32];
  if (str_of(v, name, sizeof name) == 0)
    for (size_t i = 0; i < sizeof ERRNOS / sizeof ERRNOS[0]; i++)
      if (strcmp(ERRNOS[i].name, name) == 0) return ERRNOS[i].no;
  return EIO;
}

/* ------------------------------------------------------------ the connection */

struct gmk *gmk_open_fds(int read_fd, int write_fd) {
  struct gmk *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  k->rfd = read_fd;
  k->wfd = write_fd;
  k->next_handle = 1;
  k->next_id = 1;
  return k;
}

struct gmk *gmk_connect(const char *path) {
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof a.sun_path) { errno = ENAMETOOLONG; return NULL; }
  strcpy(a.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return NULL;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { int e = errno; close(fd); errno = e; return NULL; }
  struct gmk *k = gmk_open_fds(fd, fd);
  if (!k) close(fd);
  return k;
}

void gmk_disconnect(struct gmk *k) {
  if (!k) return;
  close(k->rfd);
  if (k->wfd != k->rfd) close(k->wfd);
  free(k->buf);
  free(k->line);
  free(k);
}

const char *gmk_last_error(const struct gmk *k) { return k->err; }
int gmk_last_rpc_code(const struct gmk *k) { return k->rpc_code; }
void gmk_on_event(struct gmk *k, gmk_event_fn fn, void *ctx) { k->on_event = fn; k->event_ctx = ctx; }

static int broken(struct gmk *k, const char *what) {
  snprintf(k->err, sizeof k->err, "gmemkit: %s: %s", what, errno ? strerror(errno) : "connection closed");
  k->rpc_code = 0;
  errno = EPROTO;
  return GMK_EPROTO;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) { if (errno == EINTR) continue; return -1; }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* The next line from the server (owned by k->line), or NULL on EOF/error. */
static char *next_line(struct gmk *k) {
  for (;;) {
    char *nl = k->buf ? memchr(k->buf, '\n', k->len) : NULL;
    if (nl) {
      size_t n = (size_t)(nl - k->buf);
      free(k->line);
      k->line = malloc(n + 1);
      if (!k->line) return NULL;
      memcpy(k->line, k->buf, n);
      k->line[n] = 0;
      memmove(k->buf, nl + 1, k->len - n - 1);
      k->len -= n + 1;
      return k->line;
    }
    if (k->len + 65536 > k->cap) {
      size_t cap = k->cap * 2 + 65536;
      char *b = realloc(k->buf, cap);
      if (!b) return NULL;
      k->buf = b;
      k->cap = cap;
    }
    ssize_t r = read(k->rfd, k->buf + k->len, k->cap - k->len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) { if (r == 0) errno = 0; return NULL; }
    k->len += (size_t)r;
  }
}

/* Send one request and wait for its reply; notifications before it go to the event handler.
 * Returns the reply's `result` (inside k->line), or NULL with k->err set. */
static const char *rpc(struct gmk *k, const char *method, const char *params) {
  int id = k->next_id++;
  struct sb s = {0};
  sb_add(&s, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"%s\",\"params\":%s}\n", id, method, params ? params : "{}");
  if (s.oom) { free(s.p); errno = ENOMEM; broken(k, "out of memory"); return NULL; }
  int w = write_all(k->wfd, s.p, s.n);
  free(s.p);
  if (w < 0) { broken(k, "write"); return NULL; }
  for (;;) {
    char *line = next_line(k);
    if (!line) { broken(k, "read"); return NULL; }
    const char *idv = find(line, "id");
    if (!idv) {
      const char *m = find(line, "method");
      char name[64];
      if (k->on_event && m && str_of(m, name, sizeof name) == 0) {
        const char *pv = find(line, "params");
        const char *pe = pv ? skip(pv) : NULL;
        char *params_copy = pv && pe ? strndup(pv, (size_t)(pe - pv)) : NULL;
        k->on_event(k->event_ctx, name, params_copy ? params_copy : "null");
        free(params_copy);
      }
      continue;
    }
    /* id null: the server could not read our request at all; the error is the reply to it. */
    if (strncmp(idv, "null", 4) != 0 && num_of(idv) != id) continue; /* not ours (cannot happen with one caller) */
    const char *e = find(line, "error");
    if (e) {
      k->rpc_code = (int)num_of(find(e, "code"));
      if (str_of(find(e, "message"), k->err, sizeof k->err) != 0) snprintf(k->err, sizeof k->err, "JSON-RPC error %d", k->rpc_code);
      errno = EPROTO;
      return NULL;
    }
    k->rpc_code = 0;
    k->err[0] = 0;
    return find(line, "result");
  }
}

int gmk_call(struct gmk *k, const char *method, const char *params_json, char *result, size_t cap) {
  const char *r = rpc(k, method, params_json);
  if (!r) return GMK_EPROTO;
  if (result && cap) {
    const char *end = skip(r);
    size_t n = end ? (size_t)(end - r) : strlen(r);
    if (n >= cap) n = cap - 1;
    memcpy(result, r, n);
    result[n] = 0;
  }
  return 0;
}

/* An op's outcome as the kernel's return: the handle / value / 0, -errno, or a GMK_ code.
 * `data` (if given) receives the bytes of a read (hex in the outcome). */
static int64_t outcome(struct gmk *k, const char *r, int handle, uint64_t *error_offset, void *data, size_t len) {
  if (!r) return GMK_EPROTO;
  const char *kind = find(r, "kind");
  if (is(kind, "ok")) {
    const char *d = find(r, "data");
    if (d && data) {
      char *out = data;
      const char *h = d + 1;
      for (size_t i = 0; i < len && h[0] != '"' && h[1] != '"'; i++, h += 2) {
        char two[3] = {h[0], h[1], 0};
        out[i] = (char)strtoul(two, NULL, 16);
      }
    }
    if (handle) return handle;
    const char *v = find(r, "value");
    return v ? num_of(v) : 0;
  }
  if (is(kind, "errno")) {
    int e = errno_of(find(r, "errno"));
    if (error_offset) {
      const char *eo = find(find(r, "out"), "error_offset");
      if (eo) *error_offset = (uint64_t)strtoull(*eo == '"' ? eo + 1 : eo, NULL, 10);
    }
    str_of(find(r, "why"), k->err, sizeof k->err);
    errno = e;
    return -e;
  }
  if (is(kind, "signal")) {
    str_of(find(r, "why"), k->err, sizeof k->err);
    return is(find(r, "signal"), "SIGSEGV") ? GMK_SIGSEGV : GMK_SIGBUS;
  }
  str_of(find(r, "why"), k->err, sizeof k->err);
  if (is(kind, "exit")) return GMK_EXIT;
  errno = EPROTO;
  return GMK_EPROTO; /* skipped / unsupported */
}

/* Build params, call `method`, and map the outcome. `as`: name a new handle. */
#define BEGIN struct sb s = {0}; sb_add(&s, "{")
static int64_t finish(struct gmk *k, struct sb *s, const char *method, int as, uint64_t *eo, void *data, size_t len) {
  int h = 0;
  if (as) { h = k->next_handle++; sb_add(s, "%s\"as\":\"h%d\"", s->n > 1 ? "," : "", h); }
  sb_add(s, "}");
  if (s->oom) { free(s->p); errno = ENOMEM; return broken(k, "out of memory"); }
  const char *r = rpc(k, method, s->p);
  free(s->p);
  return outcome(k, r, h, eo, data, len);
}

int gmk_session(struct gmk *k, const char *profile, const char *machine) {
  BEGIN;
  if (profile) sb_str(&s, "profile", profile);
  if (machine) sb_str(&s, "machine", machine);
  sb_add(&s, "}");
  const char *r = rpc(k, "session", s.p);
  free(s.p);
  return r ? 0 : GMK_EPROTO;
}

int gmk_subscribe(struct gmk *k, const char *events_json) {
  BEGIN;
  sb_add(&s, "\"events\":%s}", events_json);
  const char *r = rpc(k, "subscribe", s.p);
  free(s.p);
  return r ? 0 : GMK_EPROTO;
}

int gmk_create_vm(struct gmk *k, unsigned long type) { BEGIN; sb_u64(&s, "type", type); return (int)finish(k, &s, "create_vm", 1, NULL, NULL, 0); }

int gmk_check_extension(struct gmk *k, int vm, const char *cap) {
  BEGIN; sb_str(&s, "cap", cap); if (vm) sb_handle(&s, "vm", vm);
  return (int)finish(k, &s, "check_extension", 0, NULL, NULL, 0);
}

int gmk_create_guest_memfd(struct gmk *k, int vm, uint64_t size, uint64_t flags) {
  BEGIN; sb_handle(&s, "vm", vm); sb_u64(&s, "size", size); sb_u64(&s, "flags", flags);
  return (int)finish(k, &s, "create_guest_memfd", 1, NULL, NULL, 0);
}

int gmk_close(struct gmk *k, int fd) { BEGIN; sb_handle(&s, "fd", fd); return (int)finish(k, &s, "close", 0, NULL, NULL, 0); }

int gmk_mmap(struct gmk *k, int fd, uint64_t offset, uint64_t length) {
  BEGIN; sb_handle(&s, "fd", fd); sb_u64(&s, "offset", offset); sb_u64(&s, "length", length);
  return (int)finish(k, &s, "mmap", 1, NULL, NULL, 0);
}

int gmk_munmap(struct gmk *k, int map) { BEGIN; sb_handle(&s, "map", map); return (int)finish(k, &s, "munmap", 0, NULL, NULL, 0); }

int gmk_read(struct gmk *k, int map, uint64_t offset, void *buf, size_t len) {
  BEGIN; sb_handle(&s, "map", map); sb_u64(&s, "offset", offset); sb_u64(&s, "length", len);
  return (int)finish(k, &s, "read", 0, NULL, buf, len);
}

int gmk_write(struct gmk *k, int map, uint64_t offset, const void *buf, size_t len) {
  BEGIN; sb_handle(&s, "map", map); sb_u64(&s, "offset", offset);
  sb_add(&s, ",\"bytes\":[");
  for (size_t i = 0; i < len; i++) sb_add(&s, "%s%u", i ? "," : "", ((const unsigned char *)buf)[i]);
  sb_add(&s, "]");
  return (int)finish(k, &s, "write", 0, NULL, NULL, 0);
}

int gmk_fallocate(struct gmk *k, int fd, int mode, int64_t offset, int64_t len) {
  BEGIN; sb_handle(&s, "fd", fd); sb_s64(&s, "mode", mode); sb_s64(&s, "offset", offset); sb_s64(&s, "length", len);
  return (int)finish(k, &s, "fallocate", 0, NULL, NULL, 0);
}

int gmk_set_user_memory_region2(struct gmk *k, int vm, const struct gmk_memory_region2 *r) {
  BEGIN; sb_handle(&s, "vm", vm); sb_u64(&s, "slot", r->slot);
  sb_u64(&s, "flags", r->flags | (r->guest_memfd ? GMK_MEM_GUEST_MEMFD : 0));
  sb_u64(&s, "guest_phys_addr", r->guest_phys_addr); sb_u64(&s, "memory_size", r->memory_size);
  if (r->userspace_map) sb_handle(&s, "userspace_addr", r->userspace_map);
  if (r->guest_memfd) { sb_handle(&s, "guest_memfd", r->guest_memfd); sb_u64(&s, "guest_memfd_offset", r->guest_memfd_offset); }
  return (int)finish(k, &s, "set_user_memory_region2", 0, NULL, NULL, 0);
}

int gmk_set_memory_attributes2(struct gmk *k, int gmem, uint64_t offset, uint64_t size,
                               uint64_t attributes, uint64_t flags, uint64_t *error_offset) {
  BEGIN; sb_handle(&s, "fd", gmem); sb_u64(&s, "offset", offset); sb_u64(&s, "size", size);
  sb_u64(&s, "attributes", attributes); sb_u64(&s, "flags", flags);
  return (int)finish(k, &s, "set_memory_attributes2", 0, error_offset, NULL, 0);
}

int gmk_pin_user_pages(struct gmk *k, int map, uint64_t offset, uint64_t length, int longterm) {
  BEGIN; sb_handle(&s, "map", map); sb_u64(&s, "offset", offset); sb_u64(&s, "length", length); sb_bool(&s, "longterm", longterm);
  return (int)finish(k, &s, "pin_user_pages", 1, NULL, NULL, 0);
}

int gmk_unpin_user_pages(struct gmk *k, int pin) { BEGIN; sb_handle(&s, "pin", pin); return (int)finish(k, &s, "unpin_user_pages", 0, NULL, NULL, 0); }

int gmk_io_uring_register_buffers(struct gmk *k, int map, uint64_t offset, uint64_t length) {
  BEGIN; sb_handle(&s, "map", map); sb_u64(&s, "offset", offset); sb_u64(&s, "length", length);
  return (int)finish(k, &s, "io_uring_register_buffers", 1, NULL, NULL, 0);
}

int gmk_io_uring_unregister_buffers(struct gmk *k, int ring) { BEGIN; sb_handle(&s, "ring", ring); return (int)finish(k, &s, "io_uring_unregister_buffers", 0, NULL, NULL, 0); }

int gmk_vfio_dma_map(struct gmk *k, int map, uint64_t offset, uint64_t length, uint64_t iova) {
  BEGIN; sb_handle(&s, "map", map); sb_u64(&s, "offset", offset); sb_u64(&s, "length", length); sb_u64(&s, "iova", iova);
  return (int)finish(k, &s, "vfio_dma_map", 1, NULL, NULL, 0);
}

int gmk_vfio_dma_unmap(struct gmk *k, int dma) { BEGIN; sb_handle(&s, "dma", dma); return (int)finish(k, &s, "vfio_dma_unmap", 0, NULL, NULL, 0); }

int gmk_guest_boot(struct gmk *k, int vm, const struct gmk_guest_shape *g) {
  BEGIN; sb_handle(&s, "vm", vm);
  if (g) {
    sb_u64(&s, "ram", g->ram); sb_u64(&s, "boot_private", g->boot_private); sb_u64(&s, "boot_chunk", g->boot_chunk);
    sb_u64(&s, "bounce_size", g->bounce_size); sb_u64(&s, "bounce_conversions", g->bounce_conversions); sb_u64(&s, "seed", g->seed);
  }
  sb_add(&s, "}");
  const char *r = rpc(k, "guest_boot", s.p);
  free(s.p);
  return r ? 0 : GMK_EPROTO;
}

int gmk_vcpu_run(struct gmk *k, int vm, int64_t ret, struct gmk_exit *x) {
  BEGIN; sb_handle(&s, "vm", vm);
  if (ret != GMK_NO_RET) sb_s64(&s, "ret", ret);
  sb_add(&s, "}");
  const char *r = rpc(k, "vcpu_run", s.p);
  free(s.p);
  if (!r) return GMK_EPROTO;
  memset(x, 0, sizeof *x);
  const char *e = find(r, "exit");
  x->reason = is(e, "HYPERCALL") ? GMK_EXIT_HYPERCALL : is(e, "MEMORY_FAULT") ? GMK_EXIT_MEMORY_FAULT : GMK_EXIT_SHUTDOWN;
  x->gpa = (uint64_t)num_of(find(r, "gpa"));
  x->size = (uint64_t)num_of(find(r, "size"));
  x->to_private = x->reason == GMK_EXIT_HYPERCALL ? is(find(r, "to"), "private") : (find(r, "private") && strncmp(find(r, "private"), "true", 4) == 0);
  x->request = (int)num_of(find(r, "request"));
  x->attempt = (int)num_of(find(r, "attempt"));
  x->requests = (int)num_of(find(r, "requests"));
  x->completed = (int)num_of(find(r, "completed"));
  x->failed = (int)num_of(find(r, "failed"));
  x->faults = (int)num_of(find(r, "faults"));
  return 0;
}
