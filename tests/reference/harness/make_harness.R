# lme4's fit of every case in tests/reference/harness/cases.json (run from the
# repository root): writes tests/reference/harness/<name>.json.
#
#   Rscript tests/reference/harness/make_harness.R
#
# Fields: logLik (REML or ML as fitted), theta and theta_names (lme4's order and
# names), sigma, varcorr (as.data.frame(VarCorr(fit))), ngrps (per grouping factor),
# fixef, singular (isSingular), notes (lme4's warnings and messages), lme4's version.
suppressMessages({library(lme4); library(jsonlite)})
dir <- "tests/reference/harness"
cases <- fromJSON(file.path(dir, "cases.json"), simplifyVector = FALSE)
for (case in cases) {
  data <- read.csv(file.path(dir, paste0(case$name, ".csv")), stringsAsFactors = TRUE)
  # Grouping variables are factors whatever their labels look like.
  for (v in c("g1", "g2", "g3", "f", "a", "g", "h", "k")) {
    if (!is.null(data[[v]])) data[[v]] <- factor(data[[v]])
  }
  notes <- character(0)
  fit <- withCallingHandlers(
    lmer(as.formula(case$formula), data = data, REML = case$REML),
    warning = function(w) {notes <<- c(notes, conditionMessage(w)); invokeRestart("muffleWarning")},
    message = function(m) {notes <<- c(notes, conditionMessage(m)); invokeRestart("muffleMessage")}
  )
  th <- getME(fit, "theta")
  vc <- as.data.frame(VarCorr(fit))
  vc$var1[is.na(vc$var1)] <- ""
  vc$var2[is.na(vc$var2)] <- ""
  out <- list(
    name = case$name, formula = case$formula, REML = case$REML, source = case$source,
    nobs = nobs(fit), logLik = as.numeric(logLik(fit)),
    theta = I(unname(th)), theta_names = I(names(th)), sigma = sigma(fit),
    varcorr = vc, ngrps = as.list(ngrps(fit)), fixef = as.list(fixef(fit)),
    singular = isSingular(fit), notes = I(notes),
    version = as.character(packageVersion("lme4"))
  )
  writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
             file.path(dir, paste0(case$name, ".json")))
}
