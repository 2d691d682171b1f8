# Fit the harness's designs with lme4 (1.1-31, default control) and write what it found.
#
#   Rscript benchmarks/harness/fit_lme4.R DIR
#
# reads DIR/designs.json and DIR/<id>.csv, writes DIR/lme4.json: per design its
# logLik (REML or ML as fitted), theta with lme4's names, sigma, isSingular(), the
# warnings and messages lme4 gave, or the error.
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
designs <- fromJSON(file.path(dir, "designs.json"), simplifyVector = FALSE)
out <- vector("list", length(designs))
for (i in seq_along(designs)) {
  d <- designs[[i]]
  data <- read.csv(file.path(dir, paste0(d$id, ".csv")), stringsAsFactors = TRUE)
  notes <- character(0)
  fit <- tryCatch(
    withCallingHandlers(
      lmer(as.formula(d$formula), data = data, REML = d$REML),
      warning = function(w) {notes <<- c(notes, conditionMessage(w)); invokeRestart("muffleWarning")},
      message = function(m) {notes <<- c(notes, conditionMessage(m)); invokeRestart("muffleMessage")}
    ),
    error = function(e) e
  )
  if (inherits(fit, "error")) {
    out[[i]] <- list(id = d$id, error = conditionMessage(fit))
    next
  }
  th <- getME(fit, "theta")
  out[[i]] <- list(
    id = d$id, formula = d$formula, REML = d$REML,
    logLik = as.numeric(logLik(fit)), theta = I(unname(th)), theta_names = I(names(th)),
    sigma = sigma(fit), singular = isSingular(fit), notes = I(notes),
    version = as.character(packageVersion("lme4"))
  )
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null"), file.path(dir, "lme4.json"))
