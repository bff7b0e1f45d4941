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
 *   - sctp_recvmsg() on such a socket      -> plain recv() (SGsAP has no framing to restore).
 * Sockets the kernel really made as SCTP are passed through untouched. Lab use only: real
 * deployments have SCTP. Build: gcc -shared -fPIC -O2 -o sctp_shim.so sctp_shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

#define SCTP_SOCKOPT_BINDX_ADD 100
#define SCTP_SOCKOPT_CONNECTX_OLD 107
#define SCTP_SOCKOPT_CONNECTX 110
#define SCTP_SOCKOPT_CONNECTX3 111

struct sctp_sndrcvinfo; /* opaque here: only zeroed */
#define SCTP_SNDRCVINFO_SIZE 32 /* sizeof(struct sctp_sndrcvinfo) on Linux */

typedef int (*socket_fn)(int, int, int);
typedef int (*setsockopt_fn)(int, int, int, const void *, socklen_t);
typedef int (*getsockopt_fn)(int, int, int, void *, socklen_t *);
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
	static setsockopt_fn fn;
	if (!fn)
		fn = (setsockopt_fn)next_sym("setsockopt");
	if (level != IPPROTO_SCTP || !is_tcp(fd))
		return fn(fd, level, name, val, len);
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

int sctp_recvmsg(int fd, void *msg, size_t len, struct sockaddr *from, socklen_t *fromlen,
		 struct sctp_sndrcvinfo *sinfo, int *msg_flags)
{
	if (!is_tcp(fd)) {
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
	ssize_t n = recvfrom(fd, msg, len, 0, from, fromlen);
	if (n > 0 && msg_flags)
		*msg_flags = MSG_EOR;
	return (int)n;
}
