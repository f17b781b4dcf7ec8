/*
 * A native nodewire node for benchmarks: the wire protocol of
 * docs/PROTOCOL.md (HELLO, NEGOTIATE with TLS/TCP/UDP, PING, REQUEST with
 * the reference node's ECHO op, GOODBYE), written so that the node is never
 * what a client benchmark measures. It is a bench tool, not a product: no
 * authentication, no ops but ECHO, IPv4 only.
 *
 * Single thread, level-triggered epoll, non-blocking sockets. Each read
 * lands in a large per-connection buffer; every complete frame in it is
 * answered into one output buffer, written once per read. A partial frame
 * stays for the next read; output the socket did not take waits for
 * EPOLLOUT, and reading pauses while too much of it is pending, so memory
 * stays bounded whatever the client does.
 *
 *   cc -O2 -std=c11 -o node node.c                                   (TCP, UDP)
 *   cc -O2 -std=c11 -DNODEWIRE_TLS -o node node.c -lssl -lcrypto     (and TLS)
 *   ./node --port 0 [--host 127.0.0.1] [--cert F --key F] [--no-udp]
 *
 * Prints "listening tcp=<port> udp=<port> tls=<0|1>" once ready and exits at
 * EOF on stdin, or on SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef NODEWIRE_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#define HEADER 16
#define MAX_FRAME (16u * 1024 * 1024)
#define MAX_SEQUENCE ((1ull << 53) - 1)
#define READ_BUF (256 * 1024)
#define OUT_INIT (256 * 1024)
/* Buffers grown past this for a large frame shrink back once it is gone. */
#define SHRINK_ABOVE (2u * 1024 * 1024)
/* Reading stops while this much output waits for the socket. */
#define OUT_PAUSE (8u * 1024 * 1024)
#define MAX_CONNS 1024
#define MAX_DATAGRAM 65507
#define UDP_BATCH 64
#define UDP_OUT_SLOTS 128
#define TOKEN 16
#define TOKEN_BUCKETS 2048
#define CLOSING_GRACE_S 2.0
#define HANDSHAKE_LIMIT_S 10.0
#define NODE_ID "native-1"
#define NODE_ID_LEN 8

enum {
  T_HELLO = 0x01,
  T_HELLO_OK = 0x02,
  T_NEGOTIATE = 0x03,
  T_NEGOTIATE_OK = 0x04,
  T_AUTH_START = 0x05,
  T_AUTH_CHALLENGE = 0x06,
  T_AUTH_FINAL = 0x07,
  T_AUTH_OK = 0x08,
  T_PING = 0x10,
  T_PONG = 0x11,
  T_REQUEST = 0x20,
  T_RESPONSE = 0x21,
  T_ERROR = 0x30,
  T_GOODBYE = 0x31,
};
enum { E_BAD_REQUEST = 2, E_UNAVAILABLE = 5, E_UNSUPPORTED = 8 };
enum { OP_ECHO = 0x01 };
enum { P_TLS = 1, P_TCP = 2, P_UDP = 4 };

enum state {
  S_FREE,
  S_OPEN,
  /* NEGOTIATE_OK chose TLS and is still being written in plaintext. */
  S_TLS_PENDING,
  S_TLS_HANDSHAKE,
  /* Told why (or said goodbye): flushing, then a FIN, then gone. */
  S_CLOSING,
};

struct conn {
  int fd;
  uint32_t gen;
  enum state state;
  bool tls, greeted, negotiated, batch, has_token, shut, want_out, kick;
  uint8_t *in;
  size_t in_len, in_cap;
  uint8_t *out;
  size_t out_off, out_len, out_cap;
  uint32_t events;
  uint64_t peer_max;
  struct in_addr peer_ip;
  uint8_t token[TOKEN];
  int token_next;
  double since;
#ifdef NODEWIRE_TLS
  SSL *ssl;
#endif
};

static struct conn conns[MAX_CONNS];
static int epfd = -1, listen_fd = -1, udp_fd = -1, signal_fd = -1;
static int tcp_port, udp_port;
static int protocols; /* P_* bits the node serves */
static int token_heads[TOKEN_BUCKETS];
#ifdef NODEWIRE_TLS
static SSL_CTX *tls_ctx;
#endif

#define ID_LISTEN (MAX_CONNS + 1)
#define ID_UDP (MAX_CONNS + 2)
#define ID_STDIN (MAX_CONNS + 3)
#define ID_SIGNAL (MAX_CONNS + 4)

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "native node: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (q == NULL) {
    fprintf(stderr, "native node: out of memory (%zu bytes)\n", n);
    exit(1);
  }
  return q;
}

/* ---- frames ---- */

static uint32_t get32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | p[3];
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static void put_header(uint8_t *p, int type, uint64_t seq, uint32_t len) {
  p[0] = 1;
  p[1] = (uint8_t)type;
  p[2] = 0;
  p[3] = 0;
  put32(p + 4, (uint32_t)(seq >> 32));
  put32(p + 8, (uint32_t)seq);
  put32(p + 12, len);
}

static bool known_type(int t) {
  return (t >= T_HELLO && t <= T_AUTH_OK) || t == T_PING || t == T_PONG ||
         t == T_REQUEST || t == T_RESPONSE || t == T_ERROR || t == T_GOODBYE;
}

/* The rules of "Frame" that the header alone decides; NULL when it passes. */
static const char *header_problem(const uint8_t *h) {
  if (h[0] != 1) return "unsupported protocol version";
  if (!known_type(h[1])) return "unknown message type";
  if (((h[2] << 8) | h[3]) & ~1) return "reserved flag bit set";
  uint64_t seq = ((uint64_t)get32(h + 4) << 32) | get32(h + 8);
  if (seq > MAX_SEQUENCE) return "sequence number above 2^53 - 1";
  if (get32(h + 12) > MAX_FRAME) return "frame larger than 16777216 bytes";
  return NULL;
}

static uint64_t header_seq(const uint8_t *h) {
  return ((uint64_t)get32(h + 4) << 32) | get32(h + 8);
}

/* ---- a tiny JSON reader: just enough for HELLO and NEGOTIATE ---- */

struct control {
  bool udp_batch;      /* "features" lists "udp-batch" */
  bool has_protocols;  /* "protocols" is an array */
  int offer;           /* P_* bits of "protocols" */
  double max_frame;    /* "maxFrameSize", or -1 */
};

static const uint8_t *ws(const uint8_t *p, const uint8_t *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* p at '"'; returns the byte after the closing quote, the raw content in s. */
static const uint8_t *string(const uint8_t *p, const uint8_t *end,
                             const uint8_t **s, size_t *n) {
  if (p >= end || *p != '"') return NULL;
  const uint8_t *start = ++p;
  while (p < end && *p != '"') {
    if (*p < 0x20) return NULL;
    p += *p == '\\' ? 2 : 1;
  }
  if (p >= end) return NULL;
  *s = start;
  *n = (size_t)(p - start);
  return p + 1;
}

static bool is(const uint8_t *s, size_t n, const char *word) {
  return n == strlen(word) && memcmp(s, word, n) == 0;
}

static const uint8_t *value(const uint8_t *p, const uint8_t *end, int depth);

static const uint8_t *container(const uint8_t *p, const uint8_t *end,
                                int depth, bool object) {
  char close = object ? '}' : ']';
  p = ws(p + 1, end);
  if (p < end && *p == close) return p + 1;
  for (;;) {
    if (object) {
      const uint8_t *s;
      size_t n;
      p = string(ws(p, end), end, &s, &n);
      if (p == NULL) return NULL;
      p = ws(p, end);
      if (p >= end || *p != ':') return NULL;
      p++;
    }
    p = value(ws(p, end), end, depth + 1);
    if (p == NULL) return NULL;
    p = ws(p, end);
    if (p >= end) return NULL;
    if (*p == close) return p + 1;
    if (*p != ',') return NULL;
    p++;
  }
}

static const uint8_t *value(const uint8_t *p, const uint8_t *end, int depth) {
  if (p >= end || depth > 32) return NULL;
  if (*p == '{' || *p == '[') return container(p, end, depth, *p == '{');
  if (*p == '"') {
    const uint8_t *s;
    size_t n;
    return string(p, end, &s, &n);
  }
  const uint8_t *start = p;
  while (p < end && *p != 0 && strchr("+-.0123456789eEtruefalsn", *p) != NULL) p++;
  return p > start ? p : NULL;
}

/* Reads the fields HELLO and NEGOTIATE need; false when not a JSON object. */
static bool read_control(const uint8_t *p, size_t len, struct control *c) {
  const uint8_t *end = p + len;
  memset(c, 0, sizeof *c);
  c->max_frame = -1;
  p = ws(p, end);
  if (p >= end || *p != '{') return false;
  p = ws(p + 1, end);
  if (p < end && *p == '}') return ws(p + 1, end) == end;
  for (;;) {
    const uint8_t *key;
    size_t key_len;
    p = string(ws(p, end), end, &key, &key_len);
    if (p == NULL) return false;
    p = ws(p, end);
    if (p >= end || *p != ':') return false;
    p = ws(p + 1, end);
    bool features = is(key, key_len, "features");
    bool offer = is(key, key_len, "protocols");
    if ((features || offer) && p < end && *p == '[') {
      if (offer) c->has_protocols = true;
      p = ws(p + 1, end);
      if (p < end && *p == ']') {
        p++;
      } else {
        for (;;) {
          const uint8_t *item = ws(p, end);
          const uint8_t *s = NULL;
          size_t n = 0;
          p = item < end && *item == '"' ? string(item, end, &s, &n)
                                         : value(item, end, 1);
          if (p == NULL) return false;
          if (s != NULL && features && is(s, n, "udp-batch")) c->udp_batch = true;
          if (s != NULL && offer) {
            if (is(s, n, "tls")) c->offer |= P_TLS;
            if (is(s, n, "tcp")) c->offer |= P_TCP;
            if (is(s, n, "udp")) c->offer |= P_UDP;
          }
          p = ws(p, end);
          if (p >= end) return false;
          if (*p == ']') {
            p++;
            break;
          }
          if (*p != ',') return false;
          p++;
        }
      }
    } else if (is(key, key_len, "maxFrameSize") && p < end &&
               *p >= '0' && *p <= '9') {
      const uint8_t *start = p;
      p = value(p, end, 1);
      if (p == NULL) return false;
      char number[32];
      size_t n = (size_t)(p - start) < 31 ? (size_t)(p - start) : 31;
      memcpy(number, start, n);
      number[n] = 0;
      c->max_frame = strtod(number, NULL);
    } else {
      p = value(p, end, 1);
      if (p == NULL) return false;
    }
    p = ws(p, end);
    if (p >= end) return false;
    if (*p == '}') return ws(p + 1, end) == end;
    if (*p != ',') return false;
    p++;
  }
}

/* ---- session tokens ---- */

static unsigned bucket(const uint8_t *token) {
  return get32(token) & (TOKEN_BUCKETS - 1);
}

static int token_find(const uint8_t *token) {
  for (int i = token_heads[bucket(token)]; i >= 0; i = conns[i].token_next) {
    if (memcmp(conns[i].token, token, TOKEN) == 0) return i;
  }
  return -1;
}

static void token_drop(int slot) {
  struct conn *c = &conns[slot];
  if (!c->has_token) return;
  int *link = &token_heads[bucket(c->token)];
  while (*link >= 0 && *link != slot) link = &conns[*link].token_next;
  if (*link == slot) *link = c->token_next;
  c->has_token = false;
}

static bool token_issue(int slot) {
  struct conn *c = &conns[slot];
  do {
    if (getrandom(c->token, TOKEN, 0) != TOKEN) return false;
  } while (token_find(c->token) >= 0);
  c->token_next = token_heads[bucket(c->token)];
  token_heads[bucket(c->token)] = slot;
  c->has_token = true;
  return true;
}

/* ---- connections ---- */

static uint64_t tag(int slot) {
  return ((uint64_t)conns[slot].gen << 32) | (uint32_t)slot;
}

static void conn_free(struct conn *c) {
  int slot = (int)(c - conns);
  token_drop(slot);
#ifdef NODEWIRE_TLS
  if (c->ssl != NULL) SSL_free(c->ssl);
  c->ssl = NULL;
#endif
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c->in);
  free(c->out);
  uint32_t gen = c->gen + 1;
  memset(c, 0, sizeof *c);
  c->gen = gen;
  c->fd = -1;
  c->state = S_FREE;
}

static size_t pending(const struct conn *c) { return c->out_len - c->out_off; }

static void set_events(struct conn *c, uint32_t events) {
  if (events == c->events) return;
  struct epoll_event ev = {.events = events, .data.u64 = tag((int)(c - conns))};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
  c->events = events;
}

static void update_events(struct conn *c) {
  bool out = pending(c) > 0 || c->want_out;
  switch (c->state) {
    case S_OPEN:
      set_events(c, (pending(c) >= OUT_PAUSE ? 0 : EPOLLIN) | (out ? EPOLLOUT : 0));
      break;
    case S_TLS_PENDING:
      set_events(c, EPOLLOUT);
      break;
    case S_CLOSING:
      set_events(c, EPOLLIN | (out ? EPOLLOUT : 0));
      break;
    default:
      break;
  }
}

/* Room for n more output bytes; bytes already written are dropped first. */
static uint8_t *out_room(struct conn *c, size_t n) {
  if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
  if (c->out_cap - c->out_len < n) {
    if (c->out_off > 0) {
      memmove(c->out, c->out + c->out_off, pending(c));
      c->out_len -= c->out_off;
      c->out_off = 0;
    }
    if (c->out_cap - c->out_len < n) {
      size_t cap = c->out_cap * 2;
      while (cap - c->out_len < n) cap *= 2;
      c->out = xrealloc(c->out, cap);
      c->out_cap = cap;
    }
  }
  uint8_t *p = c->out + c->out_len;
  c->out_len += n;
  return p;
}

static void out_frame(struct conn *c, int type, uint64_t seq,
                      const uint8_t *payload, size_t len) {
  uint8_t *p = out_room(c, HEADER + len);
  put_header(p, type, seq, (uint32_t)len);
  if (len > 0) memcpy(p + HEADER, payload, len);
}

static size_t error_payload(uint8_t *p, int code, bool retryable,
                            const char *message) {
  size_t n = strlen(message);
  p[0] = retryable ? 1 : 0;
  p[1] = (uint8_t)(code >> 8);
  p[2] = (uint8_t)code;
  memcpy(p + 3, message, n);
  return 3 + n;
}

static void out_error(struct conn *c, uint64_t seq, int code, bool retryable,
                      const char *message) {
  uint8_t payload[256];
  out_frame(c, T_ERROR, seq, payload, error_payload(payload, code, retryable, message));
}

/* Sends what the node has to say (ERROR, sequence 0), then closes. */
static void violation(struct conn *c, int code, const char *message) {
  out_error(c, 0, code, false, message);
  c->state = S_CLOSING;
  c->since = now_s();
}

/* ECHO is the one op: the reply is the node id and the data. */
static void request(struct conn *c, uint64_t seq, const uint8_t *p, size_t len) {
  if (len == 0 || p[0] != OP_ECHO) {
    char text[64];
    snprintf(text, sizeof text, "unsupported operation 0x%x", len ? p[0] : 0);
    out_error(c, seq, E_UNSUPPORTED, false, text);
    return;
  }
  size_t reply = 1 + NODE_ID_LEN + (len - 1);
  if (reply > c->peer_max) {
    out_error(c, seq, E_UNSUPPORTED, false, "the reply is larger than the client accepts");
    return;
  }
  uint8_t *o = out_room(c, HEADER + reply);
  put_header(o, T_RESPONSE, seq, (uint32_t)reply);
  o[HEADER] = NODE_ID_LEN;
  memcpy(o + HEADER + 1, NODE_ID, NODE_ID_LEN);
  memcpy(o + HEADER + 1 + NODE_ID_LEN, p + 1, len - 1);
}

static size_t protocol_list(char *p, size_t n) {
  return (size_t)snprintf(p, n, "[%s%s%s]",
                          protocols & P_TLS ? "\"tls\"" : "",
                          protocols & P_TCP ? (protocols & P_TLS ? ",\"tcp\"" : "\"tcp\"") : "",
                          protocols & P_UDP ? (protocols & (P_TLS | P_TCP) ? ",\"udp\"" : "\"udp\"") : "");
}

static void hello(struct conn *c, uint64_t seq, const uint8_t *p, size_t len) {
  struct control hello;
  if (!read_control(p, len, &hello)) {
    violation(c, E_BAD_REQUEST, "HELLO is not a JSON object");
    return;
  }
  c->greeted = true;
  if (hello.max_frame >= 0 && hello.max_frame < (double)c->peer_max) {
    c->peer_max = (uint64_t)hello.max_frame;
  }
  c->batch = hello.udp_batch && (protocols & P_UDP);
  char list[64], text[256];
  protocol_list(list, sizeof list);
  int n = snprintf(text, sizeof text,
                   "{\"nodeId\":\"" NODE_ID "\",\"maxFrameSize\":%u,\"auth\":\"none\","
                   "\"protocols\":%s%s}",
                   MAX_FRAME, list, c->batch ? ",\"features\":[\"udp-batch\"]" : "");
  out_frame(c, T_HELLO_OK, seq, (const uint8_t *)text, (size_t)n);
}

static void negotiate(struct conn *c, uint64_t seq, const uint8_t *p, size_t len) {
  struct control offer;
  if (c->negotiated) {
    violation(c, E_BAD_REQUEST, "NEGOTIATE comes at most once, before authentication");
    return;
  }
  if (!read_control(p, len, &offer) || !offer.has_protocols) {
    violation(c, E_BAD_REQUEST, "NEGOTIATE needs a protocols array");
    return;
  }
  c->negotiated = true;
  int common = offer.offer & protocols;
  int selected = common & P_TLS ? P_TLS : common & P_TCP ? P_TCP : common & P_UDP ? P_UDP : 0;
  char list[64], port[32] = "", token[64] = "", text[256];
  protocol_list(list, sizeof list);
  if (protocols & P_UDP) snprintf(port, sizeof port, ",\"udpPort\":%d", udp_port);
  if (selected == P_UDP) {
    if (!token_issue((int)(c - conns))) {
      violation(c, 1, "no random bytes for a UDP token");
      return;
    }
    int at = snprintf(token, sizeof token, ",\"udpToken\":\"");
    for (int i = 0; i < TOKEN; i++) at += snprintf(token + at, sizeof token - at, "%02x", c->token[i]);
    snprintf(token + at, sizeof token - at, "\"");
  }
  const char *name = selected == P_TLS ? "\"tls\"" : selected == P_TCP ? "\"tcp\"" : selected == P_UDP ? "\"udp\"" : "null";
  int n = snprintf(text, sizeof text, "{\"protocols\":%s,\"selected\":%s%s%s}", list, name, port, token);
  out_frame(c, T_NEGOTIATE_OK, seq, (const uint8_t *)text, (size_t)n);
  if (selected == P_TLS) c->state = S_TLS_PENDING;
}

static void frame(struct conn *c, int type, uint64_t seq, const uint8_t *p, size_t len) {
  if (!c->greeted) {
    if (type == T_HELLO) hello(c, seq, p, len);
    else violation(c, E_BAD_REQUEST, "the first message must be HELLO");
    return;
  }
  switch (type) {
    case T_REQUEST:
      request(c, seq, p, len);
      return;
    case T_PING:
      out_frame(c, T_PONG, seq, p, len);
      return;
    case T_NEGOTIATE:
      negotiate(c, seq, p, len);
      return;
    case T_GOODBYE:
      c->state = S_CLOSING;
      c->since = now_s();
      return;
    case T_AUTH_START:
    case T_AUTH_FINAL:
      violation(c, E_UNSUPPORTED, "this node does not authenticate");
      return;
    default:
      violation(c, E_BAD_REQUEST, "unexpected message type from a client");
      return;
  }
}

/* Answers every whole frame in the input buffer; keeps a partial one. */
static void process(struct conn *c) {
  size_t pos = 0;
  while (c->state == S_OPEN && c->in_len - pos >= HEADER) {
    const uint8_t *h = c->in + pos;
    const char *problem = header_problem(h);
    if (problem != NULL) {
      violation(c, E_BAD_REQUEST, problem);
      break;
    }
    size_t len = get32(h + 12);
    if (c->in_len - pos < HEADER + len) break;
    frame(c, h[1], header_seq(h), h + HEADER, len);
    pos += HEADER + len;
  }
  if (c->state == S_TLS_PENDING && pos < c->in_len) {
    /* Plaintext behind NEGOTIATE: nobody may speak before TLS is up. */
    c->state = S_CLOSING;
    c->since = now_s();
  }
  if (c->state != S_OPEN) pos = c->in_len;
  if (pos > 0) {
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
  }
  if (c->in_cap > SHRINK_ABOVE && c->in_len <= READ_BUF) {
    c->in = xrealloc(c->in, READ_BUF);
    c->in_cap = READ_BUF;
  }
}

/* Room to read into: a full buffer holds the start of a frame larger than it. */
static bool in_room(struct conn *c) {
  if (c->in_len < c->in_cap) return true;
  const char *problem = header_problem(c->in);
  if (problem != NULL) {
    violation(c, E_BAD_REQUEST, problem);
    return false;
  }
  size_t need = HEADER + get32(c->in + 12);
  c->in = xrealloc(c->in, need);
  c->in_cap = need;
  return true;
}

static void start_tls(struct conn *c);
static bool flush(struct conn *c);

static void read_plain(struct conn *c) {
  if (!in_room(c)) {
    flush(c);
    return;
  }
  ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    /* The client is done: what it asked for goes out if the socket takes it. */
    if (n == 0 && pending(c) > 0) {
      c->state = S_CLOSING;
      c->since = now_s();
      flush(c);
      return;
    }
    conn_free(c);
    return;
  }
  if (n < 0) return;
  c->in_len += (size_t)n;
  process(c);
  flush(c);
}

#ifdef NODEWIRE_TLS
static void read_tls(struct conn *c) {
  for (;;) {
    if (c->state != S_OPEN || pending(c) >= OUT_PAUSE) break;
    if (!in_room(c)) break;
    int n = SSL_read(c->ssl, c->in + c->in_len, (int)(c->in_cap - c->in_len));
    if (n > 0) {
      c->in_len += (size_t)n;
      if (c->in_len == c->in_cap) process(c);
      /*
       * With read-ahead OpenSSL took what the socket had in one read. When
       * it holds nothing more, another SSL_read would only fail with EAGAIN:
       * the level-triggered EPOLLIN says when more comes.
       */
      if (!SSL_has_pending(c->ssl)) break;
      continue;
    }
    int error = SSL_get_error(c->ssl, n);
    if (error == SSL_ERROR_WANT_READ) break;
    if (error == SSL_ERROR_WANT_WRITE) {
      c->want_out = true;
      break;
    }
    conn_free(c);
    return;
  }
  process(c);
  flush(c);
}

static void tls_handshake(struct conn *c) {
  ERR_clear_error();
  int r = SSL_do_handshake(c->ssl);
  if (r == 1) {
    c->state = S_OPEN;
    c->tls = true;
    c->events = 0;
    update_events(c);
    read_tls(c);
    return;
  }
  int error = SSL_get_error(c->ssl, r);
  if (error == SSL_ERROR_WANT_READ) set_events(c, EPOLLIN);
  else if (error == SSL_ERROR_WANT_WRITE) set_events(c, EPOLLOUT);
  else conn_free(c);
}

static void start_tls(struct conn *c) {
  c->ssl = SSL_new(tls_ctx);
  if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
    conn_free(c);
    return;
  }
  SSL_set_accept_state(c->ssl);
  c->state = S_TLS_HANDSHAKE;
  c->since = now_s();
  tls_handshake(c);
}
#else
static void start_tls(struct conn *c) { conn_free(c); }
#endif

static void read_conn(struct conn *c) {
#ifdef NODEWIRE_TLS
  if (c->tls) {
    read_tls(c);
    return;
  }
#endif
  read_plain(c);
}

/*
 * Writes pending output. Returns false when the connection is gone. Moves
 * on from S_TLS_PENDING (start TLS) and S_CLOSING (FIN) once all is out.
 */
static bool flush(struct conn *c) {
  bool was_paused = pending(c) >= OUT_PAUSE;
  while (pending(c) > 0) {
    ssize_t n;
#ifdef NODEWIRE_TLS
    if (c->tls) {
      ERR_clear_error();
      int w = SSL_write(c->ssl, c->out + c->out_off, (int)(pending(c) > (1u << 30) ? (1u << 30) : pending(c)));
      if (w <= 0) {
        int error = SSL_get_error(c->ssl, w);
        if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) break;
        conn_free(c);
        return false;
      }
      n = w;
    } else
#endif
    {
      n = send(c->fd, c->out + c->out_off, pending(c), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        conn_free(c);
        return false;
      }
    }
    c->out_off += (size_t)n;
  }
  if (pending(c) == 0) {
    c->out_off = c->out_len = 0;
    if (c->out_cap > SHRINK_ABOVE) {
      c->out = xrealloc(c->out, OUT_INIT);
      c->out_cap = OUT_INIT;
    }
    if (c->state == S_TLS_PENDING) {
      start_tls(c);
      return c->state != S_FREE;
    }
    if (c->state == S_CLOSING && !c->shut) {
#ifdef NODEWIRE_TLS
      if (c->tls) SSL_shutdown(c->ssl);
#endif
      shutdown(c->fd, SHUT_WR);
      c->shut = true;
    }
  }
  update_events(c);
  /* Unpaused: TLS may hold decrypted bytes that no EPOLLIN will announce. */
  if (was_paused && pending(c) < OUT_PAUSE && c->tls && c->state == S_OPEN) c->kick = true;
  return true;
}

static void on_conn(int slot, uint32_t gen, uint32_t events) {
  struct conn *c = &conns[slot];
  if (c->state == S_FREE || c->gen != gen) return;
  switch (c->state) {
#ifdef NODEWIRE_TLS
    case S_TLS_HANDSHAKE:
      tls_handshake(c);
      return;
#endif
    case S_TLS_PENDING:
      if (events & (EPOLLERR | EPOLLHUP)) conn_free(c);
      else flush(c);
      return;
    case S_CLOSING: {
      if ((events & EPOLLOUT) && !flush(c)) return;
      if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        uint8_t sink[4096];
        ssize_t n = read(c->fd, sink, sizeof sink);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) conn_free(c);
      }
      return;
    }
    case S_OPEN:
      if (c->want_out || (events & EPOLLOUT)) {
        bool retry_read = c->want_out;
        c->want_out = false;
        if (!flush(c)) return;
        if (retry_read) c->kick = true;
      }
      if (c->state == S_OPEN && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && pending(c) < OUT_PAUSE) {
        read_conn(c);
      }
      while (c->state == S_OPEN && c->gen == gen && c->kick) {
        c->kick = false;
        read_conn(c);
      }
      return;
    default:
      return;
  }
}

static void on_accept(void) {
  for (;;) {
    struct sockaddr_in peer;
    socklen_t peer_len = sizeof peer;
    int fd = accept4(listen_fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int slot = -1;
    for (int i = 0; i < MAX_CONNS; i++) {
      if (conns[i].state == S_FREE) {
        slot = i;
        break;
      }
    }
    if (slot < 0) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = &conns[slot];
    c->fd = fd;
    c->state = S_OPEN;
    c->peer_ip = peer.sin_addr;
    c->peer_max = MAX_FRAME;
    c->token_next = -1;
    c->in = xrealloc(NULL, READ_BUF);
    c->in_cap = READ_BUF;
    c->out = xrealloc(NULL, OUT_INIT);
    c->out_cap = OUT_INIT;
    c->events = EPOLLIN;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag(slot)};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) conn_free(c);
  }
}

/* ---- UDP ---- */

struct udp_out {
  struct sockaddr_in to;
  uint8_t token[TOKEN];
  bool batch;
  size_t len;
  uint8_t bytes[MAX_DATAGRAM];
};

static uint8_t udp_in[UDP_BATCH][MAX_DATAGRAM + 1];
static struct udp_out udp_outs[UDP_OUT_SLOTS];
static int udp_out_count;

static void udp_flush(void) {
  struct mmsghdr msgs[UDP_OUT_SLOTS];
  struct iovec iov[UDP_OUT_SLOTS];
  for (int i = 0; i < udp_out_count; i++) {
    iov[i].iov_base = udp_outs[i].bytes;
    iov[i].iov_len = udp_outs[i].len;
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_name = &udp_outs[i].to;
    msgs[i].msg_hdr.msg_namelen = sizeof udp_outs[i].to;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int sent = 0, stalls = 0;
  while (sent < udp_out_count) {
    int n = sendmmsg(udp_fd, msgs + sent, (unsigned)(udp_out_count - sent), 0);
    if (n > 0) {
      sent += n;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == ENOBUFS) && stalls++ < 20) {
      /* A full send buffer on loopback clears in microseconds: wait, briefly. */
      struct pollfd p = {.fd = udp_fd, .events = POLLOUT};
      poll(&p, 1, 5);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    /* Anything else (the peer's port closed): skip that datagram. */
    sent++;
  }
  udp_out_count = 0;
}

/* Where a reply frame of `size` bytes to this peer goes. */
static uint8_t *udp_room(const struct sockaddr_in *to, const uint8_t *token, bool batch, size_t size) {
  if (batch) {
    for (int i = udp_out_count - 1; i >= 0; i--) {
      struct udp_out *o = &udp_outs[i];
      if (o->to.sin_port == to->sin_port && o->to.sin_addr.s_addr == to->sin_addr.s_addr &&
          memcmp(o->token, token, TOKEN) == 0) {
        if (!o->batch || o->len + size > MAX_DATAGRAM) break;
        uint8_t *p = o->bytes + o->len;
        o->len += size;
        return p;
      }
    }
  }
  if (udp_out_count == UDP_OUT_SLOTS) udp_flush();
  struct udp_out *o = &udp_outs[udp_out_count++];
  o->to = *to;
  memcpy(o->token, token, TOKEN);
  memcpy(o->bytes, token, TOKEN);
  o->batch = batch;
  o->len = TOKEN + size;
  return o->bytes + TOKEN;
}

static void udp_error(const struct sockaddr_in *to, const uint8_t *token, bool batch,
                      uint64_t seq, int code, bool retryable, const char *message) {
  uint8_t payload[256];
  size_t n = error_payload(payload, code, retryable, message);
  uint8_t *p = udp_room(to, token, batch, HEADER + n);
  put_header(p, T_ERROR, seq, (uint32_t)n);
  memcpy(p + HEADER, payload, n);
}

static void udp_frame(struct conn *c, const struct sockaddr_in *from, const uint8_t *h) {
  int type = h[1];
  uint64_t seq = header_seq(h);
  size_t len = get32(h + 12);
  const uint8_t *p = h + HEADER;
  if (type == T_PING) {
    if (TOKEN + HEADER + len > MAX_DATAGRAM) return;
    uint8_t *o = udp_room(from, c->token, c->batch, HEADER + len);
    put_header(o, T_PONG, seq, (uint32_t)len);
    memcpy(o + HEADER, p, len);
    return;
  }
  if (type != T_REQUEST) return;
  if (len == 0 || p[0] != OP_ECHO) {
    char text[64];
    snprintf(text, sizeof text, "unsupported operation 0x%x", len ? p[0] : 0);
    udp_error(from, c->token, c->batch, seq, E_UNSUPPORTED, false, text);
    return;
  }
  size_t reply = 1 + NODE_ID_LEN + (len - 1);
  if (TOKEN + HEADER + reply > MAX_DATAGRAM) {
    udp_error(from, c->token, c->batch, seq, E_UNSUPPORTED, false,
              "the reply does not fit in a 65507-byte datagram; use TCP");
    return;
  }
  uint8_t *o = udp_room(from, c->token, c->batch, HEADER + reply);
  put_header(o, T_RESPONSE, seq, (uint32_t)reply);
  o[HEADER] = NODE_ID_LEN;
  memcpy(o + HEADER + 1, NODE_ID, NODE_ID_LEN);
  memcpy(o + HEADER + 1 + NODE_ID_LEN, p + 1, len - 1);
}

/* Whether the frames after the token fill the datagram exactly, each with
   a sound header; one frame only unless `batch`. */
static bool datagram_ok(const uint8_t *d, size_t len, bool batch) {
  size_t pos = TOKEN;
  while (pos < len) {
    if (len - pos < HEADER || header_problem(d + pos) != NULL) return false;
    size_t frame_len = HEADER + get32(d + pos + 12);
    if (frame_len > len - pos) return false;
    pos += frame_len;
    if (!batch && pos != len) return false;
  }
  return true;
}

static void udp_datagram(const uint8_t *d, size_t len, const struct sockaddr_in *from) {
  if (len < TOKEN + HEADER) return;
  int slot = token_find(d);
  if (slot < 0) {
    /* Only a well-formed REQUEST or PING is told its session is gone:
       forged bytes must not draw a larger answer at whoever they name. */
    int type = d[TOKEN + 1];
    if ((type == T_REQUEST || type == T_PING) && datagram_ok(d, len, true)) {
      udp_error(from, d, false, 0, E_UNAVAILABLE, true, "unknown UDP session");
    }
    return;
  }
  struct conn *c = &conns[slot];
  if (from->sin_addr.s_addr != c->peer_ip.s_addr) return;
  /* The whole datagram is checked before any frame of it is answered. */
  if (!datagram_ok(d, len, c->batch)) return;
  for (size_t pos = TOKEN; pos < len; pos += HEADER + get32(d + pos + 12)) {
    udp_frame(c, from, d + pos);
  }
}

static void on_udp(void) {
  struct mmsghdr msgs[UDP_BATCH];
  struct iovec iov[UDP_BATCH];
  struct sockaddr_in from[UDP_BATCH];
  for (int round = 0; round < 8; round++) {
    for (int i = 0; i < UDP_BATCH; i++) {
      iov[i].iov_base = udp_in[i];
      iov[i].iov_len = sizeof udp_in[i];
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(udp_fd, msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) break;
    for (int i = 0; i < n; i++) {
      /* Truncated (over 65507 bytes) or not IPv4: not for us. */
      if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || msgs[i].msg_len > MAX_DATAGRAM) continue;
      if (from[i].sin_family != AF_INET) continue;
      udp_datagram(udp_in[i], msgs[i].msg_len, &from[i]);
    }
    if (n < UDP_BATCH) break;
  }
  udp_flush();
}

/* ---- start-up and the loop ---- */

static void sweep(void) {
  double t = now_s();
  for (int i = 0; i < MAX_CONNS; i++) {
    struct conn *c = &conns[i];
    if ((c->state == S_CLOSING && t - c->since > CLOSING_GRACE_S) ||
        ((c->state == S_TLS_HANDSHAKE || c->state == S_TLS_PENDING) && t - c->since > HANDSHAKE_LIMIT_S)) {
      conn_free(c);
    }
  }
}

static void add(int fd, uint32_t id) {
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = id};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
}

static void usage(void) {
  fprintf(stderr, "usage: node --port P [--host A] [--cert F --key F] [--no-udp]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *cert = NULL, *key = NULL;
  int port = -1;
  bool udp = true;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--no-udp") == 0) udp = false;
    else if (i + 1 < argc && strcmp(argv[i], "--port") == 0) port = atoi(argv[++i]);
    else if (i + 1 < argc && strcmp(argv[i], "--host") == 0) host = argv[++i];
    else if (i + 1 < argc && strcmp(argv[i], "--cert") == 0) cert = argv[++i];
    else if (i + 1 < argc && strcmp(argv[i], "--key") == 0) key = argv[++i];
    else usage();
  }
  if (port < 0 || port > 65535 || (cert == NULL) != (key == NULL)) usage();
  signal(SIGPIPE, SIG_IGN);
  for (int i = 0; i < MAX_CONNS; i++) conns[i].fd = -1;
  for (int i = 0; i < TOKEN_BUCKETS; i++) token_heads[i] = -1;
  protocols = P_TCP;

  bool tls = false;
  if (cert != NULL) {
#ifdef NODEWIRE_TLS
    tls_ctx = SSL_CTX_new(TLS_server_method());
    if (tls_ctx == NULL) die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /*
     * Read-ahead: one read() takes every record the socket holds, where
     * OpenSSL otherwise reads each record's header and body apart (and a
     * third read finds the socket empty): three system calls a batch of
     * requests became one, as a server built for throughput would do.
     */
    SSL_CTX_set_read_ahead(tls_ctx, 1);
    if (SSL_CTX_use_certificate_chain_file(tls_ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(tls_ctx, key, SSL_FILETYPE_PEM) != 1) {
      fprintf(stderr, "native node: cannot load %s / %s\n", cert, key);
      ERR_print_errors_fp(stderr);
      return 1;
    }
    tls = true;
    protocols |= P_TLS;
#else
    fprintf(stderr, "native node: built without OpenSSL: --cert ignored, no TLS\n");
#endif
  }

  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    fprintf(stderr, "native node: --host must be an IPv4 address, got %s\n", host);
    return 2;
  }
  listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd < 0) die("socket");
  int one = 1;
  setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind tcp");
  if (listen(listen_fd, 512) < 0) die("listen");
  socklen_t addr_len = sizeof addr;
  getsockname(listen_fd, (struct sockaddr *)&addr, &addr_len);
  tcp_port = ntohs(addr.sin_port);

  if (udp) {
    udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (udp_fd < 0) die("socket udp");
    int buffer = 4 * 1024 * 1024;
    setsockopt(udp_fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    setsockopt(udp_fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    /* The TCP port's number when free, else any. */
    if (bind(udp_fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
      addr.sin_port = 0;
      if (bind(udp_fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind udp");
    }
    addr_len = sizeof addr;
    getsockname(udp_fd, (struct sockaddr *)&addr, &addr_len);
    udp_port = ntohs(addr.sin_port);
    protocols |= P_UDP;
  }

  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  add(listen_fd, ID_LISTEN);
  if (udp_fd >= 0) add(udp_fd, ID_UDP);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigprocmask(SIG_BLOCK, &stop, NULL);
  signal_fd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd < 0) die("signalfd");
  add(signal_fd, ID_SIGNAL);
  /* A pipe or terminal on stdin ends us at EOF; a file cannot be polled. */
  struct epoll_event stdin_ev = {.events = EPOLLIN, .data.u64 = ID_STDIN};
  bool watch_stdin = epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &stdin_ev) == 0;
  if (!watch_stdin) fprintf(stderr, "native node: stdin cannot be watched; stop with SIGTERM\n");

  printf("listening tcp=%d udp=%d tls=%d\n", tcp_port, udp_port, tls ? 1 : 0);
  fflush(stdout);

  struct epoll_event events[256];
  double last_sweep = now_s();
  for (;;) {
    int n = epoll_wait(epfd, events, 256, 1000);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      uint64_t id = events[i].data.u64;
      uint32_t slot = (uint32_t)id;
      if (slot < MAX_CONNS) {
        on_conn((int)slot, (uint32_t)(id >> 32), events[i].events);
      } else if (slot == ID_LISTEN) {
        on_accept();
      } else if (slot == ID_UDP) {
        on_udp();
      } else if (slot == ID_STDIN) {
        char sink[256];
        ssize_t r = read(0, sink, sizeof sink);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) goto done;
      } else if (slot == ID_SIGNAL) {
        goto done;
      }
    }
    double t = now_s();
    if (t - last_sweep >= 1.0) {
      sweep();
      last_sweep = t;
    }
  }
done:
  for (int i = 0; i < MAX_CONNS; i++) {
    if (conns[i].state != S_FREE) conn_free(&conns[i]);
  }
  close(listen_fd);
  if (udp_fd >= 0) close(udp_fd);
  return 0;
}
