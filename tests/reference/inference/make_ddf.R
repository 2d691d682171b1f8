# Denominator-df references for sklmixed.inference (Satterthwaite, Kenward-Roger,
# contrasts, single-model anova), written to tests/reference/inference/ddf_<name>.json
# and the printed lmerTest summaries to ddf_<name>_summary_<method>.txt.
#
#   Rscript tests/reference/inference/make_ddf.R                 # every model
#   Rscript tests/reference/inference/make_ddf.R exam_sex_vr     # only the models named
#
# Needs R 4 with lme4 1.1-31, lmerTest 3.1-3, pbkrtest 0.5.2 and jsonlite. Every model is
# fitted on a CSV of tests/data/ read with read.csv(stringsAsFactors = TRUE), the files the
# Python tests read. The models: every founding fit of tests/reference/*.json (formula,
# data and REML read from its JSON) plus two Exam models with factors for anova.
#
# Fields of each JSON:
#   name, dataset, formula, REML, fixef (lme4's names and order)
#   satterthwaite: summary(fit)$coefficients (Estimate, Std. Error, df, t value, Pr(>|t|))
#   kenward_roger (REML fits): summary(fit, ddf = "Kenward-Roger")$coefficients,
#     vcov_adjusted (pbkrtest::vcovAdj), and for L_several: KRmodcomp's F, F unscaled,
#     ddf, F.scaling, p.value
#   L_one (one row), L_several (several rows): the contrasts tested, rows of matrices
#   contest_one, contest_several: lmerTest's contest() (Satterthwaite) of them
#   anova_I, anova_II, anova_III: anova(fit, type = ...) with Satterthwaite's method
#     (one row per term: Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F)); for REML fits
#     also anova_III_KR (ddf = "Kenward-Roger")
suppressPackageStartupMessages({
  library(lmerTest)
  library(pbkrtest)
  library(jsonlite)
})
stopifnot(packageVersion("lme4") == "1.1.31")
options(width = 80)

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1) dirname(normalizePath(f)) else normalizePath("tests/reference/inference")
})
ref_dir <- normalizePath(file.path(script_dir, ".."))
data_dir <- normalizePath(file.path(ref_dir, "..", "data"))

read_dataset <- function(name) {
  d <- read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = TRUE)
  if (name == "Exam") d$schgend <- factor(d$schgend, levels = c("mixed", "boys", "girls"))
  d
}

table_list <- function(tab) {
  tab <- as.data.frame(tab)
  out <- lapply(names(tab), function(col) setNames(as.list(tab[[col]]), rownames(tab)))
  setNames(out, names(tab))
}

models <- list()
for (path in sort(Sys.glob(file.path(ref_dir, "*.json")))) {
  ref <- fromJSON(path)
  models[[ref$name]] <- list(dataset = ref$dataset, formula = ref$formula, REML = ref$REML)
}
models$exam_factors <- list(dataset = "Exam", REML = TRUE,
  formula = "normexam ~ standLRT + sex + schgend + (1 | school)")
models$exam_factorial <- list(dataset = "Exam", REML = TRUE,
  formula = "normexam ~ standLRT + sex * schgend + (1 | school)")
models$exam_sex_vr <- list(dataset = "Exam", REML = TRUE,
  formula = "normexam ~ standLRT + sex * vr + (1 | school)")
models$exam_slope_sex <- list(dataset = "Exam", REML = TRUE,
  formula = "normexam ~ standLRT * sex + (1 + standLRT | school)")
only <- commandArgs(TRUE)
if (length(only)) models <- models[only]

summary_names <- c("sleepstudy_rs", "exam_ri_standLRT", "exam_cross_level", "exam_rs_ML",
                   "exam_rs_schavg",
                   "penicillin_crossed")

for (name in names(models)) {
  m <- models[[name]]
  data <- read_dataset(m$dataset)
  # The formula spliced into the call, so that summaries print it (not a variable).
  fit <- eval(bquote(lmer(.(as.formula(m$formula)), data = data, REML = .(m$REML))))
  beta <- fixef(fit)
  p <- length(beta)
  out <- list(name = name, dataset = m$dataset, formula = m$formula, REML = m$REML,
              fixef = as.list(beta))
  out$satterthwaite <- table_list(summary(fit)$coefficients)
  L_one <- matrix(seq_len(p) / p, nrow = 1)
  L_several <- if (p >= 3) diag(p)[-1, , drop = FALSE] else diag(p)
  out$L_one <- L_one
  out$L_several <- L_several
  out$contest_one <- table_list(contest(fit, L_one, joint = FALSE))
  if (p >= 2) out$contest_several <- table_list(contest(fit, L_several))
  if (p >= 2) {
    for (type in c("I", "II", "III")) {
      out[[paste0("anova_", type)]] <- table_list(anova(fit, type = type))
    }
  }
  if (m$REML) {
    out$kenward_roger <- table_list(summary(fit, ddf = "Kenward-Roger")$coefficients)
    out$vcov_adjusted <- unname(as.matrix(vcovAdj(fit)))
    kr <- KRmodcomp(fit, L_several)$test
    out$krmodcomp_several <- list(F = kr["Ftest", "stat"], F_unscaled = kr["FtestU", "stat"],
                                  ndf = kr["Ftest", "ndf"], ddf = kr["Ftest", "ddf"],
                                  F_scaling = kr["Ftest", "F.scaling"],
                                  p_value = kr["Ftest", "p.value"])
    out$kr_ddf_one <- Lb_ddf(L_one, vcov(fit), vcovAdj(fit))
    if (p >= 2) out$anova_III_KR <- table_list(anova(fit, type = "III", ddf = "Kenward-Roger"))
  }
  write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
        file.path(script_dir, paste0("ddf_", name, ".json")))
  if (name %in% summary_names) {
    methods <- if (m$REML) c("Satterthwaite", "Kenward-Roger") else "Satterthwaite"
    for (method in methods) {
      text <- capture.output(print(summary(fit, ddf = method)))
      writeLines(text, file.path(script_dir, sprintf("ddf_%s_summary_%s.txt", name, method)))
    }
  }
  cat("wrote", name, "\n")
}
