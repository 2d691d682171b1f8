# R reference for missing values (lme4's default na.action = na.omit).
# Regenerate from the repository root:  Rscript tests/reference/docs/make_missing.R
suppressMessages({library(lme4); library(jsonlite)})
d <- read.csv("tests/data/Exam.csv")
# Deterministic missing values: 20 in standLRT, 2 in the response (one of them on a
# row that also misses standLRT), and 1 in schavg, which the model does not use.
na_x <- seq(7, 4059, by = 200)
na_y <- c(3, 207)
d$standLRT[na_x] <- NA
d$normexam[na_y] <- NA
d$schavg[50] <- NA
fit <- lmer(normexam ~ standLRT + (1 | school), data = d)
omitted <- as.integer(attr(model.frame(fit), "na.action"))
out <- list(
  formula = "normexam ~ standLRT + (1 | school)",
  REML = TRUE, lme4_version = as.character(packageVersion("lme4")),
  na_standLRT = na_x, na_normexam = na_y, na_schavg = 50L,
  na_action_rows = omitted,          # 1-based row numbers, as R's na.action
  nobs = nobs(fit),
  fixef = as.list(fixef(fit)), fixef_se = as.list(sqrt(diag(as.matrix(vcov(fit))))),
  theta = unname(getME(fit, "theta")), sigma = sigma(fit),
  REMLcrit = REMLcrit(fit), logLik = as.numeric(logLik(fit))
)
write_json(out, "tests/reference/docs/exam_missing.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
