/* MPI's handles are macros Swift cannot import (Open MPI's are casts of the
 * addresses of globals); these return them as values. */
#include <mpi.h>

static inline MPI_Comm bg_mpi_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype bg_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype bg_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype bg_mpi_byte(void) { return MPI_BYTE; }
static inline int bg_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline MPI_Info bg_mpi_info_null(void) { return MPI_INFO_NULL; }
