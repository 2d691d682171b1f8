# lme4 reference fits on awkward but valid data: tests/reference/awkward/*.json.
#
#   Rscript tests/reference/awkward/make_awkward.R           # write data and references
#   Rscript tests/reference/awkward/make_awkward.R --no-data  # refit from the CSVs on disk
#
# Needs R 4 with lme4 1.1-31 and jsonlite.
#
# The data sets are simulated here with a fixed seed (or derived from sleepstudy.csv),
# written to tests/data/awkward/*.csv with write.csv(row.names = FALSE) and read back with
# read.csv(stringsAsFactors = TRUE) before fitting, so R fits exactly the file the Python
# tests read. Numbers are rounded to a few decimals before writing, so every value and
# every exact linear relation between columns (x3 = x1 + 2 x2, Days2 = 2 Days) survives
# the decimal round trip.
#
# JSON fields: those of ../README.md that do not need lmerTest (name, dataset, formula,
# REML, lme4_version, nobs, ngroups, fixef, fixef_se, vcov_fixef, varcorr, sigma, theta,
# theta_names, logLik, df, REMLcrit, deviance_ML, AIC, BIC, singular, ranef, fitted),
# plus
#   dropped   fixed-effect columns lme4 dropped as rank deficient (attr "col.dropped")
#   notes     every warning and message lme4 emitted while fitting, and its optinfo
#             convergence messages ("fixed-effect model matrix is rank deficient ...")
#   purpose   what the fit is a reference for.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
stopifnot(packageVersion("lme4") == "1.1.31")

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1) dirname(normalizePath(f)) else normalizePath("tests/reference/awkward")
})
ref_dir <- script_dir
main_data_dir <- normalizePath(file.path(script_dir, "..", "..", "data"))
data_dir <- file.path(main_data_dir, "awkward")
write_data <- !("--no-data" %in% commandArgs(TRUE))


# ---- data -----------------------------------------------------------------------------

# aliased.csv: 150 rows in 16 groups of very different sizes (three groups of one row),
# rows shuffled so groups are not contiguous. x3 = x1 + 2 x2 exactly; cA, cB, cC are the
# indicator columns of a three-level factor (they sum to the intercept); zero is all 0;
# b is a logical grouping column (two levels) with an effect of its own.
make_aliased <- function() {
  set.seed(20240611)
  sizes <- c(1, 1, 1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 25, 22)
  g_levels <- sprintf("s%02d", seq_along(sizes))
  g <- rep(g_levels, sizes)
  n <- length(g)
  u <- setNames(rnorm(length(sizes), sd = 0.7), g_levels)
  x1 <- round(rnorm(n), 3)
  x2 <- round(runif(n, -1, 1), 3)
  x3 <- round(x1 + 2 * x2, 3)
  cat3 <- sample(c("A", "B", "C"), n, replace = TRUE)
  b <- g %in% g_levels[c(2, 3, 5, 8, 11, 13, 16)]
  y <- 2 + 0.5 * x1 - 0.8 * x2 + c(A = 0, B = 0.5, C = -0.3)[cat3] + u[g] + 0.6 * b +
    rnorm(n, sd = 0.5)
  dat <- data.frame(
    y = round(unname(y), 4), x1 = x1, x2 = x2, x3 = x3,
    cA = as.numeric(cat3 == "A"), cB = as.numeric(cat3 == "B"), cC = as.numeric(cat3 == "C"),
    zero = 0, g = g, b = b)
  dat[sample(n), ]
}

# unbalanced.csv: 200 rows; group "big" holds 180 (90%), ten groups "s01".."s10" two each.
make_unbalanced <- function() {
  set.seed(7)
  g_levels <- c("big", sprintf("s%02d", 1:10))
  g <- c(rep("big", 180), rep(g_levels[-1], each = 2))
  n <- length(g)
  u <- setNames(rnorm(11, sd = 1), g_levels)
  v <- setNames(rnorm(11, sd = 0.4), g_levels)
  x <- round(rnorm(n), 3)
  y <- 1 + 0.5 * x + u[g] + v[g] * x + rnorm(n, sd = 0.6)
  dat <- data.frame(y = round(unname(y), 4), x = x, g = g)
  dat[sample(n), ]
}

# sleepstudy_awkward.csv: sleepstudy.csv plus
#   Days2  = 2 Days           (a random-effect column collinear with Days)
#   Rbig   = 1e6 + Reaction    (response around 1e6, noise sd ~ 30)
#   Dsmall = Days * 1e-6       (a feature around 1e-6)
make_sleepstudy_awkward <- function() {
  ss <- read.csv(file.path(main_data_dir, "sleepstudy.csv"), stringsAsFactors = TRUE)
  ss$Subject <- factor(ss$Subject)
  ss$Days2 <- 2 * ss$Days
  ss$Rbig <- 1e6 + ss$Reaction
  ss$Dsmall <- ss$Days * 1e-6
  ss
}

# disjoint_slopes.csv: 120 rows, g (8 levels) crossed with h (6 levels); `treated` is 1 on
# alternate rows and `control` = 1 - treated, so in (0 + treated | g) + (0 + control | h)
# the two terms never share a row (Z2'Z1 = 0). A valid model lme4 fits.
make_disjoint_slopes <- function() {
  set.seed(11)
  n <- 120
  g_levels <- sprintf("g%d", 1:8)
  h_levels <- sprintf("h%d", 1:6)
  g <- sample(g_levels, n, replace = TRUE)
  h <- sample(h_levels, n, replace = TRUE)
  treated <- rep(c(1, 0), n / 2)
  u <- setNames(rnorm(8), g_levels)
  v <- setNames(rnorm(6, sd = 0.7), h_levels)
  y <- 1 + treated + u[g] * treated + v[h] * (1 - treated) + rnorm(n)
  data.frame(y = round(unname(y), 4), treated = treated, control = 1 - treated, g = g, h = h)
}

DATASETS <- list(
  aliased = make_aliased,
  unbalanced = make_unbalanced,
  sleepstudy_awkward = make_sleepstudy_awkward,
  disjoint_slopes = make_disjoint_slopes)

# Not written here: two small data sets found by the property tests
# (tests/test_properties.py), kept verbatim at 17 significant digits because the
# behaviour they show depends on the exact numbers:
#   reorder_singular.csv  12 rows, 3 groups: (x1 + x2 | g) and (x2 + x1 | g) are the same
#                         model; lme4 reaches the same optimum in both orders, sklmixed
#                         stopped (before the core fix) at a worse singular point in the second
#   reorder_singular_crossed.csv
#                         the same with a crossed factor h: (x1 + x2 | g) + (1 | h), where
#                         sklmixed stopped at a worse singular point in the first order
#   reorder_singular_intercept.csv
#                         20 rows, 3 groups: in (x1 + x2 | g) sklmixed stops where the
#                         intercept's diagonal entry of T is 0 (not a minimum)
#   tiny_huge_slope.csv   4 rows, 3 groups, a feature around 1e7: 0 + f0 + (1 + f0 || g)
#   huge_collinear_crossed.csv
#                         6 rows, f1 = f0 around 1e7, g crossed with h. Not fitted here:
#                         lme4 stops on y ~ 0 + f0 + f1 + (0 + f0 + f1 | g) +
#                         (0 + f0 + f1 | h) with "Downdated VtV is not positive definite"

read_dataset <- function(name) {
  read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = TRUE)
}


# ---- fitting --------------------------------------------------------------------------

fit_logged <- function(spec, dat) {
  notes <- character()
  form <- as.formula(spec$formula)
  fit <- withCallingHandlers(
    lmer(form, data = dat, REML = spec$REML),
    warning = function(w) { notes <<- c(notes, paste("warning:", conditionMessage(w)))
                            invokeRestart("muffleWarning") },
    message = function(m) { notes <<- c(notes, paste("message:", trimws(conditionMessage(m))))
                            invokeRestart("muffleMessage") })
  conv <- fit@optinfo$conv$lme4$messages
  if (length(conv)) notes <- c(notes, paste("optinfo:", conv))
  list(fit = fit, notes = unique(notes))
}

source(file.path(script_dir, "..", "lme4_ranef.R"))

reference_record <- function(spec, fit, notes) {
  cf <- summary(fit)$coefficients
  vc <- as.data.frame(VarCorr(fit))
  vc$var1[is.na(vc$var1)] <- ""
  vc$var2[is.na(vc$var2)] <- ""
  vc <- vc[, c("grp", "var1", "var2", "vcov", "sdcor")]
  ll <- logLik(fit)
  # The ML refit can fail where the REML fit did not (tiny_huge_slope: "Downdated VtV is
  # not positive definite"): then deviance_ML is null.
  dev_ml <- if (isREML(fit)) tryCatch(deviance(refitML(fit)), error = function(e) NA)
            else deviance(fit)
  dropped <- attr(getME(fit, "X"), "col.dropped")
  list(
    name = spec$name,
    dataset = spec$dataset,
    formula = spec$formula,
    REML = spec$REML,
    purpose = spec$purpose,
    lme4_version = as.character(packageVersion("lme4")),
    nobs = nobs(fit),
    ngroups = as.list(ngrps(fit)),
    fixef = as.list(fixef(fit)),
    fixef_se = as.list(setNames(cf[, "Std. Error"], rownames(cf))),
    vcov_fixef = unname(as.matrix(vcov(fit))),
    dropped = I(if (is.null(dropped)) character() else names(dropped)),
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
    fitted = unname(fitted(fit)),
    notes = I(notes))
}


# ---- the models -----------------------------------------------------------------------

spec <- function(name, dataset, formula, purpose, REML = TRUE) {
  list(name = name, dataset = dataset, formula = formula, REML = REML, purpose = purpose)
}

MODELS <- list(
  spec("aliased_fixed", "aliased",
       "y ~ x1 + x2 + x3 + cA + cB + cC + zero + (1 | g)",
       "rank-deficient fixed part: lme4 drops x3, cC and zero"),
  spec("aliased_fixed_ML", "aliased",
       "y ~ x1 + x2 + x3 + cA + cB + cC + zero + (1 | g)",
       "rank-deficient fixed part, ML", REML = FALSE),
  spec("aliased_kept", "aliased", "y ~ x1 + x2 + cA + cB + (1 | g)",
       "the full-rank model of the kept columns: the same fit as aliased_fixed"),
  spec("aliased_base", "aliased", "y ~ x1 + x2 + (1 | g)",
       "group labels of any type; groups of one row among larger ones"),
  spec("aliased_slope", "aliased", "y ~ x1 + x2 + (1 + x1 | g)",
       "random slope with groups of one row among larger ones"),
  spec("aliased_bool_group", "aliased", "y ~ x1 + (1 | b)",
       "a logical grouping column (two levels)"),
  spec("unbalanced_ri", "unbalanced", "y ~ x + (1 | g)",
       "one group holds 90% of the rows"),
  spec("unbalanced_rs", "unbalanced", "y ~ x + (1 + x | g)",
       "one group holds 90% of the rows, random slope"),
  spec("sleepstudy_collinear_re", "sleepstudy_awkward",
       "Reaction ~ Days + (Days + Days2 | Subject)",
       "collinear random-effect columns (Days2 = 2 Days): the covariance of the three effects is not identifiable, the likelihood is that of (Days | Subject)"),
  spec("sleepstudy_ri", "sleepstudy_awkward", "Reaction ~ Days + (1 | Subject)",
       "well-scaled twin of sleepstudy_scaled_ri"),
  spec("sleepstudy_scaled_ri", "sleepstudy_awkward", "Rbig ~ Dsmall + (1 | Subject)",
       "response around 1e6, feature around 1e-6; lme4 warns about scales but fits"),
  spec("sleepstudy_scaled_rs", "sleepstudy_awkward", "Rbig ~ Dsmall + (Dsmall | Subject)",
       "random slope on a feature around 1e-6: lme4 FAILS to converge here (see notes); kept as a record, not as expected values"),
  spec("disjoint_slopes", "disjoint_slopes",
       "y ~ treated + (0 + treated | g) + (0 + control | h)",
       "crossed factors whose random-effect columns never share a row (Z2'Z1 = 0)"),
  spec("reorder_singular_x1x2", "reorder_singular", "y ~ x1 + x2 + (x1 + x2 | g)",
       "singular optimum, the better of the two orders"),
  spec("reorder_singular_x2x1", "reorder_singular", "y ~ x1 + x2 + (x2 + x1 | g)",
       "the same model in the other column order: the same optimum"),
  spec("reorder_singular_crossed_x1x2", "reorder_singular_crossed",
       "y ~ x1 + x2 + (x1 + x2 | g) + (1 | h)",
       "singular fit; sklmixed used to stop at a boundary point that is not a minimum"),
  spec("reorder_singular_crossed_x2x1", "reorder_singular_crossed",
       "y ~ x1 + x2 + (x2 + x1 | g) + (1 | h)",
       "the same model in the other column order"),
  spec("reorder_singular_intercept_x1x2", "reorder_singular_intercept",
       "y ~ x1 + x2 + (x1 + x2 | g)",
       "singular fit; sklmixed stops where T[1,1] = 0 with T[2,1], T[3,1] != 0, not a minimum"),
  spec("reorder_singular_intercept_x2x1", "reorder_singular_intercept",
       "y ~ x1 + x2 + (x2 + x1 | g)",
       "the same model in the other column order"),
  spec("tiny_huge_slope", "tiny_huge_slope", "y ~ 0 + f0 + (1 + f0 || g)",
       "4 rows, a feature around 1e7, uncorrelated random intercept and slope"))


# ---- main -----------------------------------------------------------------------------

dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)
if (write_data) {
  for (name in names(DATASETS)) {
    write.csv(DATASETS[[name]](), file.path(data_dir, paste0(name, ".csv")), row.names = FALSE)
  }
}
for (s in MODELS) {
  dat <- read_dataset(s$dataset)
  res <- fit_logged(s, dat)
  rec <- reference_record(s, res$fit, res$notes)
  writeLines(toJSON(rec, digits = NA, auto_unbox = TRUE, pretty = TRUE),
             file.path(ref_dir, paste0(s$name, ".json")))
  cat(sprintf("%-26s logLik %.6f  singular %s  dropped [%s]\n", s$name, rec$logLik,
              rec$singular, paste(rec$dropped, collapse = ", ")))
  for (note in res$notes) cat("    ", note, "\n")
}
