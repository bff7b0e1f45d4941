/*
 * LD_PRELOAD shim for the Osmocom lab (simulators/osmo/lab.py builds it when the kernel has no SCTP): SCTP over TCP on kernels without SCTP.
 *
 * osmo-msc refuses to start when its SGs listener cannot open an SCTP socket. Where the kernel
 * has no SCTP (socket() fails with EPROTONOSUPPORT) this library hands out a TCP socket instead
 * and emulates the few SCTP calls libosmocore / libosmo-netif / libsctp make on it:
 *   - socket(..., IPPROTO_SCTP)            -> TCP socket (SOCK_NONBLOCK / SOCK_CLOEXEC kept);
 *   - setsockopt(IPPROTO_SCTP, 100 BINDX_ADD) -> bind() to the first address;
 *     setsockopt(IPPROTO_SCTP, 107 / 110 CONNECTX_OLD / CONNECTX) -> connect() to the first one;
 *     any other SCTP option                -> success, ignored;
 *   - getsockopt(IPPROTO_SCTP, 111 CONNECTX3) -> ENOPROTOOPT (libsctp falls back to 110);
 *     any other SCTP option                -> success, zeroed value;
 *   - sctp_recvmsg() on such a socket      -> one message per call, see "Uplink framing".
 * Sockets the kernel really made as SCTP are passed through untouched. Lab use only: real
 * deployments have SCTP. Build: gcc -shared -fPIC -O2 -Wall -o sctp_shim.so sctp_shim.c -ldl
 *
 * Uplink framing. SCTP delivers one message per sctp_recvmsg(); TCP is a byte stream, and
 * SGsAP has no length field. A socket is "shimmed" when sctp_recvmsg() finds it is TCP
 * (SO_PROTOCOL): a connection accept()ed on a shimmed listener is TCP too, so no accept()
 * hook is needed. On the first sctp_recvmsg() of a connection the shim peeks 4 bytes:
 *   - "FGS1" (the virtual MME's preamble; no SGsAP message type is 0x46 'F'): consumed, the
 *     connection is FRAMED: every message follows as a 2-byte big-endian length + the message,
 *     and each sctp_recvmsg() returns exactly one message;
 *   - anything else: PLAIN, one recv() per call as before (an unmodified peer must send one
 *     message per read of osmo-msc).
 * On a FRAMED connection a message not yet complete in the kernel stays there, and the call
 * returns an SCTP notification (SCTP_SENDER_DRY_EVENT, MSG_NOTIFICATION) that osmo-msc's SGs
 * code and libosmo-netif ignore: an error return (-1/EAGAIN) would make osmo-msc 1.9 drop the
 * connection (sgs_conn_readable_cb destroys it on any rc <= 0). SO_RCVLOWAT is raised to the
 * bytes still missing, so poll() reports the socket readable again only once the message is
 * complete (or the peer closed: then the call returns 0, EOF). A message longer than the
 * caller's buffer is cut to the buffer, the rest discarded, MSG_TRUNC set.
 * Per-descriptor state lives in a table indexed by fd, cleared by close(); osmo-msc is single
 * threaded, and so is this state (not locked).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

#define SCTP_SOCKOPT_BINDX_ADD 100
#define SCTP_SOCKOPT_CONNECTX_OLD 107
#define SCTP_SOCKOPT_CONNECTX 110
#define SCTP_SOCKOPT_CONNECTX3 111

#define SCTP_MSG_NOTIFICATION 0x8000  /* linux/sctp.h MSG_NOTIFICATION */
#define SCTP_SENDER_DRY_EVENT 0x8009  /* linux/sctp.h, enum sctp_sn_type */

struct sctp_sndrcvinfo; /* opaque here: only zeroed */
#define SCTP_SNDRCVINFO_SIZE 32 /* sizeof(struct sctp_sndrcvinfo) on Linux */

/* The capability the lab's Python side looks for in the built library (mme.shim_framing). */
__attribute__((used)) const char fraudgate_shim_features[] = "fraudgate-sctp-shim: framing FGS1";

#define PREAMBLE "FGS1"
#define PREAMBLE_LEN 4
#define HEADER_LEN 2

/* Per-fd state: 0 = not seen yet, else a mode, plus a flag when SO_RCVLOWAT was raised. */
enum { FD_UNKNOWN = 0, FD_PLAIN = 1, FD_FRAMED = 2, FD_MODE = 3, FD_LOWAT = 4 };
#define MAX_FDS 65536 /* fds beyond: always PLAIN */
static uint8_t fd_state[MAX_FDS];

typedef int (*socket_fn)(int, int, int);
typedef int (*setsockopt_fn)(int, int, int, const void *, socklen_t);
typedef int (*getsockopt_fn)(int, int, int, void *, socklen_t *);
typedef int (*close_fn)(int);
typedef int (*sctp_recvmsg_fn)(int, void *, size_t, struct sockaddr *, socklen_t *,
                               struct sctp_sndrcvinfo *, int *);

static void *next_sym(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static int real_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	static getsockopt_fn fn;
	if (!fn)
		fn = (getsockopt_fn)next_sym("getsockopt");
	return fn(fd, level, name, val, len);
}

static int real_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	static setsockopt_fn fn;
	if (!fn)
		fn = (setsockopt_fn)next_sym("setsockopt");
	return fn(fd, level, name, val, len);
}

/* True when fd is a TCP socket: one of ours standing in for SCTP. */
static int is_tcp(int fd)
{
	int proto = 0;
	socklen_t len = sizeof(proto);
	if (real_getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0)
		return 0;
	return proto == IPPROTO_TCP;
}

static socklen_t addr_len(const struct sockaddr *sa, socklen_t avail)
{
	socklen_t want = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						   : sizeof(struct sockaddr_in);
	return want <= avail ? want : avail;
}

int socket(int domain, int type, int protocol)
{
	static socket_fn fn;
	if (!fn)
		fn = (socket_fn)next_sym("socket");
	int fd = fn(domain, type, protocol);
	if (fd >= 0 || protocol != IPPROTO_SCTP)
		return fd;
	if (errno != EPROTONOSUPPORT && errno != ESOCKTNOSUPPORT)
		return fd;
	int flags = type & (SOCK_NONBLOCK | SOCK_CLOEXEC);
	return fn(domain, SOCK_STREAM | flags, IPPROTO_TCP);
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	if (level != IPPROTO_SCTP || !is_tcp(fd))
		return real_setsockopt(fd, level, name, val, len);
	const struct sockaddr *sa = val;
	switch (name) {
	case SCTP_SOCKOPT_BINDX_ADD:
		if (!val || len < (socklen_t)sizeof(struct sockaddr_in)) {
			errno = EINVAL;
			return -1;
		}
		return bind(fd, sa, addr_len(sa, len));
	case SCTP_SOCKOPT_CONNECTX_OLD:
	case SCTP_SOCKOPT_CONNECTX:
		if (!val || len < (socklen_t)sizeof(struct sockaddr_in)) {
			errno = EINVAL;
			return -1;
		}
		return connect(fd, sa, addr_len(sa, len));
	default:
		return 0;
	}
}

int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	if (level != IPPROTO_SCTP || !is_tcp(fd))
		return real_getsockopt(fd, level, name, val, len);
	if (name == SCTP_SOCKOPT_CONNECTX3) {
		errno = ENOPROTOOPT;
		return -1;
	}
	if (val && len)
		memset(val, 0, *len);
	return 0;
}

/* A reused descriptor number starts fresh. */
int close(int fd)
{
	static close_fn fn;
	if (!fn)
		fn = (close_fn)next_sym("close");
	if (fd >= 0 && fd < MAX_FDS)
		fd_state[fd] = FD_UNKNOWN;
	return fn(fd);
}

/* Bytes waiting in fd's receive queue, or -1. */
static int available(int fd)
{
	int n = 0;
	return ioctl(fd, FIONREAD, &n) < 0 ? -1 : n;
}

/* Wake poll() only when `need` bytes are there (1 = the default: any byte). */
static void set_lowat(int fd, int need)
{
	if (real_setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &need, sizeof(need)) < 0)
		return;
	if (need > 1)
		fd_state[fd] |= FD_LOWAT;
	else
		fd_state[fd] &= ~FD_LOWAT;
}

/*
 * `need` bytes are not all in yet. Peer gone (FIN / error): 0, EOF (a cut message is
 * dropped). Otherwise wait in the kernel (SO_RCVLOWAT) and hand the caller a notification
 * to ignore: 12 bytes of struct sctp_sender_dry_event, MSG_NOTIFICATION.
 */
static int incomplete(int fd, void *msg, size_t len, int need, int *msg_flags)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };
	if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
		return 0;
	set_lowat(fd, need);
	const uint16_t type = SCTP_SENDER_DRY_EVENT, flags = 0;
	const uint32_t size = 12;
	if (len < size) {
		errno = EAGAIN;
		return -1;
	}
	memset(msg, 0, size);
	memcpy(msg, &type, 2);
	memcpy((char *)msg + 2, &flags, 2);
	memcpy((char *)msg + 4, &size, 4);
	if (msg_flags)
		*msg_flags = SCTP_MSG_NOTIFICATION;
	return (int)size;
}

/* First read of a connection: FRAMED when the peer opens with the preamble, else PLAIN.
 * The return value counts only while the state stays FD_UNKNOWN (EOF, error, waiting). */
static int classify(int fd, void *msg, size_t len, int *msg_flags)
{
	char head[PREAMBLE_LEN];
	ssize_t n = recv(fd, head, sizeof(head), MSG_PEEK | MSG_DONTWAIT);
	if (n <= 0)
		return (int)n; /* EOF or error (EAGAIN on a spurious wake-up, as before) */
	if (memcmp(head, PREAMBLE, n) != 0) {
		if (fd_state[fd] & FD_LOWAT) /* "F" came alone, then not "GS1" */
			set_lowat(fd, 1);
		fd_state[fd] = FD_PLAIN | (fd_state[fd] & FD_LOWAT);
		return 1;
	}
	if (n < PREAMBLE_LEN)
		return incomplete(fd, msg, len, PREAMBLE_LEN, msg_flags);
	if (recv(fd, head, sizeof(head), MSG_DONTWAIT) != PREAMBLE_LEN)
		return -1;
	fd_state[fd] = FD_FRAMED | (fd_state[fd] & FD_LOWAT);
	return 1;
}

/* One length-prefixed message into msg (see the header comment). */
static int recv_frame(int fd, void *msg, size_t len, int *msg_flags)
{
	uint8_t hdr[HEADER_LEN];
	ssize_t n = recv(fd, hdr, sizeof(hdr), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return incomplete(fd, msg, len, HEADER_LEN, msg_flags);
	if (n <= 0)
		return (int)n;
	if (n < HEADER_LEN)
		return incomplete(fd, msg, len, HEADER_LEN, msg_flags);
	int size = hdr[0] << 8 | hdr[1];
	int have = available(fd);
	if (have < 0)
		return -1;
	if (have < HEADER_LEN + size)
		return incomplete(fd, msg, len, HEADER_LEN + size, msg_flags);
	if (fd_state[fd] & FD_LOWAT)
		set_lowat(fd, 1);

	/* The header and the message (as much as fits) in one call; it is all there. */
	size_t take = (size_t)size <= len ? (size_t)size : len;
	struct iovec iov[2] = { { hdr, HEADER_LEN }, { msg, take } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	n = recvmsg(fd, &mh, MSG_DONTWAIT);
	if (n < 0)
		return -1;
	if (n != (ssize_t)(HEADER_LEN + take)) {
		errno = EIO; /* cannot happen: FIONREAD said it was there */
		return -1;
	}
	int flags = MSG_EOR;
	for (size_t rest = (size_t)size - take; rest > 0;) { /* caller's buffer too small */
		char sink[512];
		ssize_t m = recv(fd, sink, rest < sizeof(sink) ? rest : sizeof(sink), MSG_DONTWAIT);
		if (m <= 0)
			break;
		rest -= (size_t)m;
		flags |= MSG_TRUNC;
	}
	if (msg_flags)
		*msg_flags = flags;
	return (int)take;
}

int sctp_recvmsg(int fd, void *msg, size_t len, struct sockaddr *from, socklen_t *fromlen,
		 struct sctp_sndrcvinfo *sinfo, int *msg_flags)
{
	int known = fd >= 0 && fd < MAX_FDS && fd_state[fd] != FD_UNKNOWN; /* known => TCP */
	if (!known && !is_tcp(fd)) {
		static sctp_recvmsg_fn fn;
		if (!fn)
			fn = (sctp_recvmsg_fn)next_sym("sctp_recvmsg");
		if (!fn) {
			errno = ENOSYS;
			return -1;
		}
		return fn(fd, msg, len, from, fromlen, sinfo, msg_flags);
	}
	if (sinfo)
		memset(sinfo, 0, SCTP_SNDRCVINFO_SIZE);
	if (msg_flags)
		*msg_flags = 0;
	if (fd >= 0 && fd < MAX_FDS && (fd_state[fd] & FD_MODE) == FD_UNKNOWN) {
		int rc = classify(fd, msg, len, msg_flags);
		if ((fd_state[fd] & FD_MODE) == FD_UNKNOWN)
			return rc; /* undecided: EOF, error, or waiting for the preamble */
	}
	if (fd >= 0 && fd < MAX_FDS && (fd_state[fd] & FD_MODE) == FD_FRAMED) {
		if (fromlen)
			*fromlen = 0; /* a connected socket: no address, as recvfrom() on TCP says */
		return recv_frame(fd, msg, len, msg_flags);
	}

	ssize_t n = recvfrom(fd, msg, len, 0, from, fromlen);
	if (n > 0 && msg_flags)
		*msg_flags = MSG_EOR;
	return (int)n;
}
