# lme4 reference fits of crossed designs: tests/reference/crossed/*.json.
#
#   Rscript tests/reference/crossed/make_crossed.R     # from the repository root
#
# Needs R 4 with lme4 1.1-31 and jsonlite. The data (three crossed factors: subjects,
# items, sessions, with unbalanced counts and one covariate x) are simulated here with
# a fixed seed, rounded to 4 decimals, written to three_crossed.csv beside this script
# and read back with read.csv(stringsAsFactors = TRUE) before fitting, so R fits exactly
# the file the Python tests read.
#
# JSON fields (as ../README.md): name, dataset, formula, REML, lme4_version, nobs,
# ngroups, fixef, fixef_se, varcorr, sigma, theta, theta_names, logLik, REMLcrit,
# deviance_ML, singular, ranef (levels, terms, values, condvar), fitted.
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
stopifnot(packageVersion("lme4") == "1.1.31")
here <- "tests/reference/crossed"

set.seed(20261203)
n <- 3000
n_subject <- 90
n_item <- 60
n_session <- 15
subject <- sample(n_subject, n, replace = TRUE, prob = rgamma(n_subject, 2))
item <- sample(n_item, n, replace = TRUE, prob = rlnorm(n_item, 0, 0.8))
session <- sample(n_session, n, replace = TRUE, prob = rlnorm(n_session, 0, 0.5))
x <- rnorm(n)
b_item <- cbind(rnorm(n_item, sd = 0.5), rnorm(n_item, sd = 0.3))
y <- 1 + 0.4 * x + rnorm(n_subject, sd = 0.7)[subject] + b_item[item, 1] +
  b_item[item, 2] * x + rnorm(n_session, sd = 0.3)[session] + rnorm(n)
data <- data.frame(
  y = round(y, 4), x = round(x, 4),
  subject = sprintf("s%02d", subject), item = sprintf("i%02d", item),
  session = sprintf("t%02d", session)
)
csv <- file.path(here, "three_crossed.csv")
write.csv(data, csv, row.names = FALSE)
data <- read.csv(csv, stringsAsFactors = TRUE)

ranef_json <- function(fit) {
  re <- ranef(fit, condVar = TRUE)
  lapply(setNames(names(re), names(re)), function(g) {
    values <- re[[g]]
    pv <- attr(values, "postVar")
    list(
      levels = rownames(values), terms = colnames(values),
      values = unname(as.matrix(values)),
      condvar = lapply(seq_len(dim(pv)[3]), function(i) unname(pv[, , i, drop = TRUE]))
    )
  })
}

reference <- function(name, formula, REML) {
  fit <- lmer(formula, data = data, REML = REML)
  vc <- as.data.frame(VarCorr(fit))
  out <- list(
    name = name, dataset = "three_crossed", formula = deparse(formula), REML = REML,
    lme4_version = as.character(packageVersion("lme4")),
    nobs = nobs(fit), ngroups = as.list(ngrps(fit)),
    fixef = as.list(fixef(fit)),
    fixef_se = as.list(sqrt(diag(as.matrix(vcov(fit))))),
    varcorr = lapply(seq_len(nrow(vc)), function(i) as.list(vc[i, ])),
    sigma = sigma(fit), theta = unname(getME(fit, "theta")),
    theta_names = names(getME(fit, "theta")),
    logLik = as.numeric(logLik(fit)),
    REMLcrit = if (REML) as.numeric(REMLcrit(fit)) else NULL,
    deviance_ML = if (REML) deviance(refitML(fit)) else deviance(fit),
    singular = isSingular(fit), ranef = ranef_json(fit),
    fitted = unname(fitted(fit))
  )
  writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null"),
             file.path(here, paste0(name, ".json")))
}

reference("three_crossed", y ~ x + (1 | subject) + (1 | item) + (1 | session), TRUE)
reference("three_crossed_ML", y ~ x + (1 | subject) + (1 | item) + (1 | session), FALSE)
reference("three_crossed_slope", y ~ x + (1 | subject) + (1 + x | item) + (1 | session), TRUE)
