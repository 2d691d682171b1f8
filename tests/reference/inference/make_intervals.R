# lme4's intervals and likelihood-ratio tests, the references of tests/test_intervals.py.
#
#   Rscript tests/reference/inference/make_intervals.R
#
# Writes tests/reference/inference/intervals_<model>.json (confint profile and Wald,
# the profile's zeta table) and anova_<pair>.json (anova(m0, m1) and its printout),
# and bootstrap_sleepstudy.json (bootMer quantiles). Needs lme4 1.1-31 and jsonlite.
# Every model is fitted on a CSV of tests/data/ read with read.csv(stringsAsFactors =
# TRUE), the file the Python tests read. jsonlite writes numbers at full precision.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
stopifnot(packageVersion("lme4") == "1.1.31")
options(width = 100)

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1) dirname(normalizePath(f)) else normalizePath("tests/reference/inference")
})
data_dir <- normalizePath(file.path(script_dir, "..", "..", "data"))
read_dataset <- function(name) {
  read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = TRUE)
}
write_json_file <- function(x, name) {
  writeLines(toJSON(x, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
             file.path(script_dir, name))
}
matrix_rows <- function(ci) {
  lapply(seq_len(nrow(ci)), function(i) list(
    parameter = rownames(ci)[i], lower = unname(ci[i, 1]), upper = unname(ci[i, 2])))
}

data <- list(
  Exam = read_dataset("Exam"),
  sleepstudy = transform(read_dataset("sleepstudy"), Subject = factor(Subject)),
  Pastes = read_dataset("Pastes"),
  Penicillin = read_dataset("Penicillin")
)
data$Exam$school <- factor(data$Exam$school)

models <- list(
  exam_null = list("Exam", "normexam ~ 1 + (1 | school)", TRUE),
  exam_ri_standLRT = list("Exam", "normexam ~ standLRT + (1 | school)", TRUE),
  exam_rs_ML = list("Exam", "normexam ~ standLRT + (standLRT | school)", FALSE),
  exam_rs_schavg = list("Exam", "normexam ~ standLRT + schavg + (1 + standLRT | school)", TRUE),
  exam_cross_level = list("Exam", "normexam ~ standLRT * schavg + (1 + standLRT | school)", TRUE),
  sleepstudy_rs = list("sleepstudy", "Reaction ~ Days + (Days | Subject)", TRUE),
  sleepstudy_ri = list("sleepstudy", "Reaction ~ Days + (1 | Subject)", TRUE),
  pastes_nested = list("Pastes", "strength ~ 1 + (1 | batch/cask)", TRUE),
  pastes_batch = list("Pastes", "strength ~ 1 + (1 | batch)", TRUE),
  penicillin_crossed = list("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", TRUE),
  penicillin_plate = list("Penicillin", "diameter ~ 1 + (1 | plate)", TRUE)
)
fits <- lapply(models, function(m) lmer(as.formula(m[[2]]), data = data[[m[[1]]]], REML = m[[3]]))

# ---- confint: profile and Wald, and the profile itself -------------------------------
profiled <- c("exam_null", "exam_ri_standLRT", "exam_rs_ML", "exam_rs_schavg",
              "exam_cross_level", "sleepstudy_rs", "pastes_nested", "penicillin_crossed")
for (name in profiled) {
  m <- models[[name]]
  fit <- fits[[name]]
  seconds <- system.time(prof <- profile(fit))[["elapsed"]]
  ci_profile <- confint(prof, level = 0.95)
  ci_profile90 <- confint(prof, level = 0.90)
  ci_wald <- confint(fit, method = "Wald")
  zeta <- as.data.frame(prof)
  write_json_file(list(
    name = name, dataset = m[[1]], formula = m[[2]], REML = m[[3]],
    parameters = rownames(ci_profile),
    columns = colnames(ci_profile),
    profile = matrix_rows(ci_profile),
    profile_90 = matrix_rows(ci_profile90),
    wald = matrix_rows(ci_wald),
    zeta = list(parameter = as.character(zeta$.par), zeta = zeta$.zeta,
                value = zeta$.focal),
    profile_seconds = seconds
  ), paste0("intervals_", name, ".json"))
}

# ---- anova(m0, m1) ----------------------------------------------------------------------
pairs <- list(
  exam_1_2 = c("exam_null", "exam_ri_standLRT"),
  exam_2_3 = c("exam_ri_standLRT", "exam_rs_ML"),
  exam_3_4 = c("exam_rs_ML", "exam_rs_schavg"),
  exam_4_5 = c("exam_rs_schavg", "exam_cross_level"),
  sleepstudy = c("sleepstudy_ri", "sleepstudy_rs"),
  pastes = c("pastes_batch", "pastes_nested"),
  penicillin = c("penicillin_plate", "penicillin_crossed")
)
for (pair in names(pairs)) {
  a <- fits[[pairs[[pair]][1]]]
  b <- fits[[pairs[[pair]][2]]]
  msg <- character()
  tab <- withCallingHandlers(anova(a, b), message = function(e) {
    msg <<- c(msg, conditionMessage(e)); invokeRestart("muffleMessage")
  })
  printed <- capture.output(print(tab))
  write_json_file(list(
    name = pair, models = pairs[[pair]],
    formulas = unname(sapply(pairs[[pair]], function(n) models[[n]][[2]])),
    REML = unname(sapply(pairs[[pair]], function(n) models[[n]][[3]])),
    rownames = rownames(tab),
    table = lapply(as.list(as.data.frame(tab)), function(col) unname(col)),
    message = msg,
    printed = printed
  ), paste0("anova_", pair, ".json"))
}

# ---- parametric bootstrap ---------------------------------------------------------------
boot_fun <- function(x) {
  th <- getME(x, "theta")
  # sd and correlation of each term, then sigma (Cv_to_Sv appends it): confint's order
  c(lme4:::Cv_to_Sv(th, n = lengths(x@cnms), s = sigma(x)), fixef(x))
}
probs <- c(0.01, 0.02, 0.025, 0.03, 0.05, 0.25, 0.5, 0.75, 0.95, 0.97, 0.975, 0.98, 0.99)
write_bootstrap <- function(name, fit, formula, file, n_sim = 2000, seed = 20261203) {
  set.seed(seed)
  seconds <- system.time(b <- bootMer(fit, boot_fun, nsim = n_sim, type = "parametric",
                                      use.u = FALSE))[["elapsed"]]
  names_boot <- rownames(confint(fit, method = "Wald"))
  quant <- apply(b$t, 2, quantile, probs = probs, na.rm = TRUE)
  write_json_file(list(
    name = name, formula = formula, REML = isREML(fit),
    nsim = n_sim, seed = seed, parameters = names_boot, t0 = unname(b$t0),
    probs = probs,
    quantiles = setNames(lapply(seq_along(names_boot), function(j) unname(quant[, j])), names_boot),
    mean = setNames(as.list(colMeans(b$t)), names_boot),
    sd = setNames(as.list(apply(b$t, 2, sd)), names_boot),
    zero_sd = setNames(as.list(colMeans(b$t == 0)), names_boot),
    seconds = seconds
  ), file)
}
write_bootstrap("sleepstudy_rs", fits[["sleepstudy_rs"]], models$sleepstudy_rs[[2]],
                "bootstrap_sleepstudy.json")
# A singular estimate (the batch variance is 0): replicates start on the bound.
dyestuff2 <- read_dataset("Dyestuff2")
write_bootstrap("dyestuff2", lmer(Yield ~ 1 + (1 | Batch), dyestuff2), "Yield ~ 1 + (1 | Batch)",
                "bootstrap_dyestuff2.json")
cat("done\n")
