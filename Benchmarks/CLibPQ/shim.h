// libpq, PostgreSQL's C client (Debian: libpq-dev), for the driver benchmark's pipeline-mode client.
#include <libpq-fe.h>
