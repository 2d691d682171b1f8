# Generate the extra lme4 reference fits in tests/reference/extra/ and the printed
# lme4 summaries of the founding Exam models in tests/reference/summaries/.
#
#   Rscript tests/reference/make_references.R          # write extra/*.json, summaries/*.txt
#   Rscript tests/reference/make_references.R --check  # refit the founding models of
#                                                      # tests/reference/*.json and compare
#
# Needs R 4 with lme4 1.1-31, lmerTest 3.1-3, mlmRev 1.0-8 and jsonlite.
#
# Every model is fitted on a CSV of tests/data/ read with read.csv(stringsAsFactors = TRUE),
# the same file the Python tests read, so factor level order is identical on both sides.
# The founding CSVs (Exam, sleepstudy, Pastes, Penicillin, Dyestuff2) are copies of the
# project's shared data; the others are exported here and then re-read from disk:
#   egsingle.csv             mlmRev::egsingle, all 7230 rows, write.csv(row.names = FALSE)
#   sleepstudy_weighted.csv  sleepstudy.csv plus a weight column w = 1 + (Days %% 3)
#
# Each JSON has the fields of the founding files (see README.md) plus `weights`: the name
# of the weights column, or null.  jsonlite::toJSON(digits = NA, auto_unbox = TRUE,
# pretty = TRUE), so numbers are written at full precision.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
stopifnot(packageVersion("lme4") == "1.1.31")
options(width = 100)

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1) dirname(normalizePath(f)) else normalizePath("tests/reference")
})
ref_dir <- script_dir
data_dir <- normalizePath(file.path(script_dir, "..", "data"))
extra_dir <- file.path(ref_dir, "extra")
summ_dir <- file.path(ref_dir, "summaries")

N_TIMINGS <- 10
MAX_FITTED <- 20000


# ---- data -----------------------------------------------------------------------------

read_dataset <- function(name) {
  read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = TRUE)
}

export_datasets <- function() {
  suppressPackageStartupMessages(library(mlmRev))
  eg <- get("egsingle", envir = asNamespace("mlmRev"))
  write.csv(eg, file.path(data_dir, "egsingle.csv"), row.names = FALSE)

  ss <- read_dataset("sleepstudy")
  ss$Subject <- factor(ss$Subject)   # written quoted, as in sleepstudy.csv
  ss$w <- 1 + (ss$Days %% 3)
  write.csv(ss, file.path(data_dir, "sleepstudy_weighted.csv"), row.names = FALSE)
}


# ---- fitting --------------------------------------------------------------------------

# Fit `fun` (lme4::lmer or lmerTest::lmer) in an environment where the data frame is bound
# to the data set's name, so the stored call (and summary()'s "Data:" line) reads e.g.
# lmer(formula, data = Exam, REML = TRUE, weights = w).
fit_model <- function(fun, spec, dat) {
  env <- new.env(parent = globalenv())
  assign(spec$dataset, dat, envir = env)
  form <- as.formula(spec$formula, env = env)
  call <- if (is.null(spec$weights)) {
    bquote(.(fun)(.(form), data = .(as.name(spec$dataset)), REML = .(spec$REML)))
  } else {
    bquote(.(fun)(.(form), data = .(as.name(spec$dataset)), REML = .(spec$REML),
                  weights = .(as.name(spec$weights))))
  }
  eval(call, env)
}

# Fit once with lme4, recording every warning and message lme4 emits.
fit_logged <- function(spec, dat) {
  notes <- character()
  fit <- withCallingHandlers(
    fit_model(quote(lme4::lmer), spec, dat),
    warning = function(w) { notes <<- c(notes, paste("warning:", conditionMessage(w)))
                            invokeRestart("muffleWarning") },
    message = function(m) { notes <<- c(notes, paste("message:", trimws(conditionMessage(m))))
                            invokeRestart("muffleMessage") })
  conv <- fit@optinfo$conv$lme4$messages
  if (length(conv)) notes <- c(notes, paste("optinfo:", conv))
  list(fit = fit, notes = unique(notes))
}

source(file.path(script_dir, "lme4_ranef.R"))

reference_record <- function(spec, dat, fit, fit_lt, times) {
  cf <- summary(fit)$coefficients
  cf_lt <- summary(fit_lt)$coefficients      # lmerTest: Satterthwaite df and p-values
  stopifnot(isTRUE(all.equal(unname(fixef(fit)), unname(fixef(fit_lt)), tolerance = 1e-10)))
  vc <- as.data.frame(VarCorr(fit))
  vc$var1[is.na(vc$var1)] <- ""
  vc$var2[is.na(vc$var2)] <- ""
  vc <- vc[, c("grp", "var1", "var2", "vcov", "sdcor")]
  ll <- logLik(fit)
  dev_ml <- if (isREML(fit)) deviance(refitML(fit)) else deviance(fit)
  fitted_all <- unname(fitted(fit))
  resid_scaled <- unname(residuals(fit, "pearson", scaled = TRUE))  # as summary() prints

  rec <- list(
    name = spec$name,
    dataset = spec$dataset,
    formula = spec$formula,
    REML = spec$REML,
    weights = if (is.null(spec$weights)) NA else spec$weights,
    lme4_version = as.character(packageVersion("lme4")),
    nobs = nobs(fit),
    ngroups = as.list(ngrps(fit)),
    fixef = as.list(fixef(fit)),
    fixef_se = as.list(setNames(cf[, "Std. Error"], rownames(cf))),
    fixef_t = as.list(setNames(cf[, "t value"], rownames(cf))),
    fixef_df_satterthwaite = as.list(setNames(cf_lt[, "df"], rownames(cf_lt))),
    fixef_p_satterthwaite = as.list(setNames(cf_lt[, "Pr(>|t|)"], rownames(cf_lt))),
    vcov_fixef = unname(as.matrix(vcov(fit))),
    varcorr = vc,
    sigma = sigma(fit),
    theta = unname(getME(fit, "theta")),
    theta_names = names(getME(fit, "theta")),
    logLik = as.numeric(ll),
    df = attr(ll, "df"),
    deviance_ML = dev_ml,
    REMLcrit = if (isREML(fit)) unname(getME(fit, "devcomp")$cmp[["REML"]]) else NA,
    AIC = AIC(fit),
    BIC = BIC(fit),
    singular = isSingular(fit),
    ranef = ranef_list(fit),
    fitted = if (length(fitted_all) <= MAX_FITTED) fitted_all else NA,
    fitted_head = head(fitted_all, 50),
    residual_quantiles = unname(quantile(resid_scaled)),
    fit_seconds_median = median(times),
    fit_seconds_all = times)
  if (!identical(rec$REMLcrit, NA)) stopifnot(abs(rec$REMLcrit - REMLcrit(fit)) < 1e-8)
  rec
}

time_fits <- function(spec, dat, n = N_TIMINGS) {
  vapply(seq_len(n), function(i) {
    system.time(suppressWarnings(suppressMessages(
      fit_model(quote(lme4::lmer), spec, dat))))[["elapsed"]]
  }, 0)
}

make_reference <- function(spec, timings = TRUE) {
  dat <- read_dataset(spec$dataset)
  res <- fit_logged(spec, dat)
  fit_lt <- suppressWarnings(suppressMessages(fit_model(quote(lmerTest::lmer), spec, dat)))
  times <- if (timings) time_fits(spec, dat) else NA_real_
  list(record = reference_record(spec, dat, res$fit, fit_lt, times), notes = res$notes,
       fit = res$fit)
}

write_json_file <- function(rec, path) {
  writeLines(toJSON(rec, digits = NA, auto_unbox = TRUE, pretty = TRUE), path)
}


# ---- the models -----------------------------------------------------------------------

spec <- function(name, dataset, formula, REML = TRUE, weights = NULL) {
  list(name = name, dataset = dataset, formula = formula, REML = REML, weights = weights)
}

EXTRA <- list(
  spec("three_level_nested", "egsingle", "math ~ year + (1 | schoolid/childid)"),
  spec("exam_categorical_slope", "Exam", "normexam ~ standLRT + sex + (1 + sex | school)"),
  spec("exam_categorical_slope_nointercept", "Exam", "normexam ~ standLRT + (0 + sex | school)"),
  spec("exam_poly", "Exam", "normexam ~ standLRT + I(standLRT^2) + (1 | school)"),
  spec("exam_uncorrelated_bars", "Exam", "normexam ~ standLRT + (1 + standLRT || school)"),
  spec("sleepstudy_weighted", "sleepstudy_weighted", "Reaction ~ Days + (Days | Subject)",
       weights = "w"),
  spec("sleepstudy_weighted_ML", "sleepstudy_weighted", "Reaction ~ Days + (Days | Subject)",
       REML = FALSE, weights = "w"),
  spec("penicillin_crossed_ML", "Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)",
       REML = FALSE),
  spec("pastes_interaction_group", "Pastes", "strength ~ 1 + (1 | batch) + (1 | batch:cask)"),
  spec("exam_three_bars", "Exam",
       "normexam ~ standLRT + schavg + (1 | school) + (0 + standLRT | school) + (1 | schgend)"))

SUMMARY_MODELS <- c("exam_null", "exam_ri_standLRT", "exam_rs_ML", "exam_rs_schavg",
                    "exam_cross_level")

founding_spec <- function(name) {
  ref <- fromJSON(file.path(ref_dir, paste0(name, ".json")))
  spec(ref$name, ref$dataset, ref$formula, ref$REML)
}


# ---- main -----------------------------------------------------------------------------

write_all <- function() {
  dir.create(extra_dir, showWarnings = FALSE)
  dir.create(summ_dir, showWarnings = FALSE)
  export_datasets()

  for (s in EXTRA) {
    out <- tryCatch(make_reference(s), error = function(e) e)
    if (inherits(out, "error")) {
      cat(sprintf("SKIPPED %s: %s\n", s$name, conditionMessage(out)))
      next
    }
    write_json_file(out$record, file.path(extra_dir, paste0(s$name, ".json")))
    r <- out$record
    cat(sprintf("%-36s n=%5d logLik=%.6f singular=%s median %.3fs\n", s$name, r$nobs,
                r$logLik, r$singular, r$fit_seconds_median))
    for (note in out$notes) cat("    ", note, "\n")
  }

  for (name in SUMMARY_MODELS) {
    s <- founding_spec(name)
    fit <- fit_logged(s, read_dataset(s$dataset))$fit
    txt <- capture.output(print(summary(fit)))     # lme4's summary.merMod, not lmerTest's
    writeLines(txt, file.path(summ_dir, paste0(name, ".txt")))
    cat(sprintf("summary %s\n", name))
  }
}

# Refit every founding model and compare each non-timing field with the stored JSON.
# Known difference: exam_categorical.json was fitted with mlmRev's level order of schgend
# (mixed, boys, girls); read.csv sorts levels (boys, girls, mixed), so its fixed effects
# are parametrized differently here (variance components, logLik, fitted values agree).
check_founding <- function() {
  ok <- TRUE
  for (path in sort(Sys.glob(file.path(ref_dir, "*.json")))) {
    ref <- fromJSON(path, simplifyVector = FALSE)
    s <- spec(ref$name, ref$dataset, ref$formula, ref$REML)
    out <- make_reference(s, timings = FALSE)
    mine <- fromJSON(toJSON(out$record, digits = NA, auto_unbox = TRUE),
                     simplifyVector = FALSE)
    mine$weights <- NULL
    fields_ok <- identical(names(mine), names(ref))
    skip <- c("fit_seconds_median", "fit_seconds_all")
    # Satterthwaite df come from a numerical Hessian: agree to ~1e-7 relative, and the
    # p-values of small-df terms amplify that, so they get a looser tolerance.
    tol <- function(k) if (grepl("satterthwaite", k)) 1e-5 else 1e-7
    bad <- Filter(function(k) !isTRUE(all.equal(mine[[k]], ref[[k]], tolerance = tol(k))),
                  setdiff(names(ref), skip))
    known <- if (ref$name == "exam_categorical") grep("^fixef|^vcov_fixef$", bad, value = TRUE)
    bad <- setdiff(bad, known)
    cat(sprintf("%-24s fields %s  %s%s\n", ref$name, if (fields_ok) "same" else "DIFFER",
                if (length(bad)) paste("MISMATCH:", paste(bad, collapse = ",")) else "values match",
                if (length(known)) "  (fixed effects parametrized differently: schgend level order)" else ""))
    ok <- ok && fields_ok && !length(bad)
  }
  if (!ok) quit(status = 1)
}

if ("--check" %in% commandArgs(TRUE)) check_founding() else write_all()
