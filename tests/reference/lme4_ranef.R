# Conditional modes and their covariances of an lme4 fit, in the layout of the JSON
# references; sourced by make_references.R and awkward/make_awkward.R.

# Conditional covariance of each level's modes. lme4 gives an array k x k x nlevels, or,
# when several terms share one grouping factor (e.g. (1 | g) + (0 + x | g)), a list with
# one such array per term: those are put on the diagonal of one block-diagonal matrix
# (the terms are independent a priori and a posteriori given theta).
condvar_list <- function(re_df) {
  pv <- attr(re_df, "postVar")
  if (is.list(pv)) {
    sizes <- vapply(pv, function(a) dim(a)[1], 1L)
    k <- sum(sizes)
    ends <- cumsum(sizes)
    starts <- ends - sizes + 1
    full <- array(0, c(k, k, nrow(re_df)))
    for (j in seq_along(pv)) full[starts[j]:ends[j], starts[j]:ends[j], ] <- pv[[j]]
    pv <- full
  }
  lapply(seq_len(nrow(re_df)), function(i) pv[, , i])
}

ranef_list <- function(fit) {
  re <- ranef(fit, condVar = TRUE)
  lapply(re, function(df) list(
    levels = rownames(df),
    terms = colnames(df),
    values = unname(as.matrix(df)),
    condvar = condvar_list(df)))
}
