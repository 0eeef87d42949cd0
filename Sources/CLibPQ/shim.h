// libpq, PostgreSQL's C client (Debian: libpq-dev): the hot paths' driver (a live batch in one round
// trip through pipeline mode, appends), and the driver benchmark's third client. epoll: the reactor
// that waits on libpq's sockets (Swift's Glibc module leaves it out).
#include <libpq-fe.h>
#include <sys/epoll.h>
