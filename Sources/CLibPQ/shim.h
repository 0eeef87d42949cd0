// libpq, PostgreSQL's C client (Debian: libpq-dev): the hot paths' driver (a live batch in one round
// trip through pipeline mode), and the driver benchmark's third client.
#include <libpq-fe.h>
