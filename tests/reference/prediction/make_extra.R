# lme4 references this branch needs beyond make_prediction.R (whose models have no prior
# weights, one term per factor and no nesting): dense standard errors of fitted values
# of a fit with prior weights (with its residual types), of two uncorrelated terms on
# one factor, and of nested factors (with new rows of a new cask in a known batch and of
# a new batch). Writes sleepstudy_weighted.json, exam_uncorrelated.json and
# pastes_nested.json here; see README_extra.md.
#
#   Rscript tests/reference/prediction/make_extra.R
#
# Run from the repository root. Needs R 4.2 with lme4 1.1-31, Matrix and jsonlite.
#
# The definition (README.md, with prior weights W): with Lt = getME(m, "Lambdat"), Zt, X,
# s = sigma(m),
#   C = [ Lt Zt W Z L + I   Lt Zt W X ]
#       [ X' W Z L          X' W X    ],
# Cov(u, beta) = s^2 C^{-1}, and a fitted value f_i = (Z L)_i u + X_i beta (the row's own
# weight does not enter its mean) has Var(f_i) = s^2 a_i' C^{-1} a_i, a_i = [(Z L)_i, X_i].

suppressPackageStartupMessages({
  library(lme4)
  library(Matrix)
  library(jsonlite)
})
stopifnot(packageVersion("lme4") == "1.1.31")

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1) dirname(normalizePath(f)) else normalizePath("tests/reference/prediction")
})
data_dir <- normalizePath(file.path(script_dir, "..", "..", "data"))
read_dataset <- function(name) read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = TRUE)
write_json_file <- function(rec, name) {
  writeLines(toJSON(rec, digits = NA, auto_unbox = TRUE, pretty = TRUE),
             file.path(script_dir, paste0(name, ".json")))
}

dense <- function(m) {
  Lt <- getME(m, "Lambdat"); Zt <- getME(m, "Zt"); X <- getME(m, "X"); s <- sigma(m)
  w <- weights(m)
  ZL <- as.matrix(t(Zt) %*% t(Lt))
  q <- ncol(ZL)
  C <- rbind(cbind(crossprod(ZL, w * ZL) + diag(q), crossprod(ZL, w * X)),
             cbind(crossprod(X, w * ZL), crossprod(X, w * X)))
  Cinv <- solve(C)
  ib <- q + seq_len(ncol(X))
  V <- as.matrix(vcov(m))
  rel <- max(abs(s^2 * Cinv[ib, ib] - V)) / max(abs(V))
  stopifnot(rel < 1e-10)
  A <- cbind(ZL, X)
  list(Lt = Lt, s = s, Cinv = Cinv, q = q, ZL = ZL, X = X, V = V, rel = rel,
       se_all = sqrt(s^2 * rowSums((A %*% Cinv) * A)),
       se_none = sqrt(rowSums((X %*% V) * X)))
}

common <- function(m, P, name, dataset, formula) {
  list(name = name, dataset = dataset, formula = formula, REML = TRUE,
       sigma = P$s, theta = unname(getME(m, "theta")), theta_names = names(getME(m, "theta")),
       fixef = as.list(fixef(m)), checks = list(vcov_max_rel_diff = P$rel),
       fitted = unname(fitted(m)), se_fit_all = P$se_all, se_fit_none = P$se_none,
       lme4_version = as.character(packageVersion("lme4")))
}

# Prior weights, and lme4's residual types.
d <- read_dataset("sleepstudy_weighted")
d$Subject <- factor(d$Subject)
f <- "Reaction ~ Days + (Days | Subject)"
m <- lmer(as.formula(f), data = d, weights = w)
P <- dense(m)
rec <- c(common(m, P, "sleepstudy_weighted", "sleepstudy_weighted", f), list(
  weights = "w",
  residuals_response = unname(residuals(m, type = "response")),
  residuals_pearson = unname(residuals(m, type = "pearson")),
  residuals_scaled = unname(residuals(m, type = "pearson", scaled = TRUE))))
write_json_file(rec, "sleepstudy_weighted")
cat(sprintf("sleepstudy_weighted: vcov rel %.1e\n", P$rel))

# Two uncorrelated terms on one factor.
exam <- read_dataset("Exam")
exam$school <- factor(exam$school)
f <- "normexam ~ standLRT + (1 | school) + (0 + standLRT | school)"
m <- lmer(as.formula(f), data = exam)
P <- dense(m)
keep <- seq_len(2000)
rec <- common(m, P, "exam_uncorrelated", "Exam", f)
rec$fitted <- rec$fitted[keep]; rec$se_fit_all <- rec$se_fit_all[keep]
rec$se_fit_none <- rec$se_fit_none[keep]; rec$n_rows_recorded <- length(keep)
write_json_file(rec, "exam_uncorrelated")
cat(sprintf("exam_uncorrelated: vcov rel %.1e\n", P$rel))

# Nested factors, and new rows: a new cask "z" in known batches, and a new batch "Z".
pastes <- read_dataset("Pastes")
f <- "strength ~ 1 + (1 | batch/cask)"
m <- lmer(as.formula(f), data = pastes)
P <- dense(m)
rec <- common(m, P, "pastes_nested", "Pastes", f)
new <- data.frame(batch = c("A", "B", "C", "Z", "Z", "A"), cask = c("z", "z", "a", "a", "z", "a"))
flist <- getME(m, "flist")            # cask:batch, batch (lme4's order)
cnms <- names(flist); Gp <- getME(m, "Gp")
lab <- list("cask:batch" = paste(new$cask, new$batch, sep = ":"), batch = new$batch)
Zn <- matrix(0, nrow(new), P$q)
prior <- numeric(nrow(new))
theta <- getME(m, "theta"); names(theta) <- NULL
for (k in seq_along(cnms)) {
  j <- match(lab[[cnms[k]]], levels(flist[[k]]))
  for (i in seq_len(nrow(new))) {
    if (is.na(j[i])) prior[i] <- prior[i] + (P$s * theta[k])^2
    else Zn[i, Gp[k] + j[i]] <- 1
  }
}
A <- cbind(Zn %*% t(as.matrix(P$Lt)), matrix(1, nrow(new), 1))
u <- getME(m, "u")
rec$new_rows <- list(
  batch = new$batch, cask = new$cask,
  prediction = drop(Zn %*% t(as.matrix(P$Lt)) %*% u + fixef(m)),
  se = sqrt(P$s^2 * rowSums((A %*% P$Cinv) * A) + prior),
  prior_var_new_levels = prior,
  lme4_predict = unname(predict(m, newdata = new, allow.new.levels = TRUE)))
write_json_file(rec, "pastes_nested")
cat(sprintf("pastes_nested: vcov rel %.1e, new rows vs predict %.1e\n", P$rel,
            max(abs(rec$new_rows$prediction - rec$new_rows$lme4_predict))))
