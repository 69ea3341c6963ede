/*
 * The Fortran BLAS and LAPACK routines the evaluation uses, declared here
 * because Debian's reference LAPACK and OpenBLAS ship different C headers
 * but the same Fortran symbols (libblas.so / liblapack.so point at
 * whichever is installed). Every argument is passed by reference, matrices
 * are column-major.
 */
#ifndef BIGGAN_CLAPACK_SHIM_H
#define BIGGAN_CLAPACK_SHIM_H

/* C = alpha op(A) op(B) + beta C */
void dgemm_(const char *transa, const char *transb, const int *m, const int *n,
            const int *k, const double *alpha, const double *a, const int *lda,
            const double *b, const int *ldb, const double *beta, double *c,
            const int *ldc);

/* C = alpha op(A) op(A)^T + beta C, one triangle (uplo) of C written. */
void dsyrk_(const char *uplo, const char *trans, const int *n, const int *k,
            const double *alpha, const double *a, const int *lda,
            const double *beta, double *c, const int *ldc);

/* Eigenvalues (ascending) and, with jobz = 'V', eigenvectors of a
 * symmetric matrix, by divide and conquer. lwork = liwork = -1 queries the
 * workspace sizes. */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a,
             const int *lda, double *w, double *work, const int *lwork,
             int *iwork, const int *liwork, int *info);

#endif
