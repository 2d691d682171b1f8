# lme4's printed summary() of a few glmer fits, for tests/test_glmm_reference.py.
# Run from the repository root: Rscript tests/reference/glmm/make_summaries.R
suppressPackageStartupMessages(library(lme4))
options(width = 80)
read <- function(name, factors) {
  d <- read.csv(file.path("tests/data", paste0(name, ".csv")), stringsAsFactors = FALSE)
  for (col in names(factors)) d[[col]] <- factor(as.character(d[[col]]), levels = factors[[col]])
  d
}
out <- function(fit, file) {
  writeLines(capture.output(print(summary(fit))), file.path("tests/reference/glmm", file))
}
cbpp <- read("cbpp", list(herd = as.character(1:15), period = as.character(1:4)))
out(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,
          family = binomial), "summary_cbpp_laplace.txt")
out(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,
          family = binomial, nAGQ = 25), "summary_cbpp_agq25.txt")
pe <- read.csv("tests/data/poisson_exposure.csv", stringsAsFactors = TRUE)
out(glmer(y ~ x + f + offset(log(exposure)) + (1 | g), data = pe, family = poisson),
    "summary_poisson_offset.txt")
