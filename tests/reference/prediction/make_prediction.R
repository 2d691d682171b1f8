# Standard errors of fitted values of lme4 fits, computed densely from the fit's own
# pieces (lme4 1.1-31 has no se.fit). Writes tests/reference/prediction/*.json; see
# README.md in this folder.
#
#   Rscript tests/reference/prediction/make_prediction.R
#
# Run from the repository root. Needs R 4.2 with lme4 1.1-31, Matrix and jsonlite.
# Each model is fitted with lme4::lmer on ../../data/<dataset>.csv read with
# read.csv(stringsAsFactors = TRUE), the file the Python tests read.
#
# The definition (no prior weights in these models). With Lt = getME(m, "Lambdat"),
# Zt = getME(m, "Zt"), X = getME(m, "X"), s = sigma(m), u = getME(m, "u"), and
#   C = [ Lt Zt Z L + I   Lt Zt X ]
#       [ X' Z L          X' X    ],
# the joint conditional covariance of (u, beta) is s^2 C^{-1}. The fitted value with all
# random effects is f = Z L u + X beta, so Var(f_i) = s^2 a_i' C^{-1} a_i with
# a_i = [(Z L)_i, X_i]; with no random effects Var(f_i) = X_i' V X_i, V = vcov(m).
# (L = Lambda = t(Lt).) The script checks that s^2 C^{-1}[beta, beta] equals vcov(m).
#
# New rows: for a level not in the data, its random effect has mean 0 and the prior
# covariance D = s^2 T T' of that term (T the term's block of Lambda for one level),
# independent of (u, beta). A row's prediction is x' beta + (modes of its known levels),
# and its variance is s^2 a' C^{-1} a (a built from the known levels only, zeros for the
# new ones) plus z' D z for each new level (z the row of the term's model matrix).

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
ref_dir <- script_dir
data_dir <- normalizePath(file.path(script_dir, "..", "..", "data"))
source(file.path(script_dir, "..", "lme4_ranef.R"))   # ranef_list(): modes and condvar
MAX_ROWS <- 2000
NEW_LABEL <- "NEW"

read_dataset <- function(name) {
  read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = TRUE)
}

write_json_file <- function(rec, path) {
  writeLines(toJSON(rec, digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null",
                    na = "null"), path)
}

arr <- function(x) if (is.null(x)) NULL else I(x)

fit_model <- function(s, dat) {
  env <- new.env(parent = globalenv())
  assign(s$dataset, dat, envir = env)
  form <- as.formula(s$formula, env = env)
  eval(bquote(lme4::lmer(.(form), data = .(as.name(s$dataset)), REML = .(s$REML))), env)
}


# ---- the dense pieces -----------------------------------------------------------------

dense_pieces <- function(m) {
  Lt <- getME(m, "Lambdat"); Zt <- getME(m, "Zt"); X <- getME(m, "X")
  s <- sigma(m)
  ZL <- as.matrix(t(Zt) %*% t(Lt))                  # n x q: Z Lambda
  q <- ncol(ZL); p <- ncol(X)
  C <- rbind(cbind(crossprod(ZL) + diag(q), crossprod(ZL, X)),
             cbind(crossprod(X, ZL), crossprod(X)))
  Cinv <- solve(C)
  list(Lt = Lt, ZL = ZL, X = X, s = s, q = q, p = p, Cinv = Cinv,
       u = getME(m, "u"), beta = fixef(m), ib = q + seq_len(p), iu = seq_len(q))
}

# Var of a' (u, beta) for the rows of A = [ZL | X], times s^2.
row_var <- function(A, P) P$s^2 * rowSums((A %*% P$Cinv) * A)

# Terms in lme4's order: grouping factor name, its levels, the columns of the term, the
# offset of its block in u/b, and T (its block of Lambda for one level).
term_info <- function(m) {
  cnms <- getME(m, "cnms"); flist <- getME(m, "flist"); Gp <- getME(m, "Gp")
  L <- t(getME(m, "Lambdat"))
  # each term's bar, found by its grouping factor (one term per factor in these models)
  bars <- findbars(formula(m))
  names(bars) <- vapply(bars, function(b) paste(deparse(b[[3]]), collapse = ""), "")
  stopifnot(!anyDuplicated(names(bars)), setequal(names(bars), names(cnms)))
  asgn <- attr(flist, "assign")                # the flist column of each term
  lapply(seq_along(cnms), function(k) {
    g <- names(flist)[asgn[k]]
    stopifnot(g == names(cnms)[k])
    nc <- length(cnms[[k]])
    idx <- Gp[k] + seq_len(nc)
    list(group = g, levels = levels(flist[[asgn[k]]]), columns = cnms[[k]], nc = nc,
         offset = Gp[k], T = as.matrix(L[idx, idx, drop = FALSE]), bar = bars[[g]])
  })
}

# The row of the term's own model matrix (e.g. [1, Days]) for each row of newdata.
term_matrix <- function(term, newdata) {
  lhs <- term$bar[[2]]
  mm <- model.matrix(as.formula(call("~", lhs)), newdata)
  stopifnot(identical(colnames(mm), term$columns))
  mm
}

# Grouping label of each newdata row for a term: `g` or an interaction like cask:batch.
group_labels <- function(term, newdata) {
  rhs <- term$bar[[3]]
  if (is.name(rhs)) return(as.character(newdata[[as.character(rhs)]]))
  vars <- all.vars(rhs)
  do.call(paste, c(lapply(vars, function(v) as.character(newdata[[v]])), sep = ":"))
}

predict_rows <- function(m, P, terms, newdata) {
  tt <- delete.response(terms(m, fixed.only = TRUE))
  Xn <- model.matrix(tt, model.frame(tt, newdata))
  stopifnot(identical(colnames(Xn), names(P$beta)))
  n <- nrow(newdata)
  Zn <- matrix(0, n, P$q)         # Z rows of the known levels, in b's coordinates
  prior_var <- numeric(n)         # sum of z' D z over the new levels
  status <- list()
  for (term in terms) {
    z <- term_matrix(term, newdata)
    lab <- group_labels(term, newdata)
    j <- match(lab, term$levels)
    D <- P$s^2 * term$T %*% t(term$T)
    for (i in seq_len(n)) {
      if (is.na(j[i])) {
        prior_var[i] <- prior_var[i] + drop(z[i, ] %*% D %*% z[i, ])
      } else {
        Zn[i, term$offset + (j[i] - 1) * term$nc + seq_len(term$nc)] <- z[i, ]
      }
    }
    status[[term$group]] <- ifelse(is.na(j), "new", "known")
  }
  ZLn <- Zn %*% t(as.matrix(P$Lt))  # rows of Z Lambda
  A <- cbind(ZLn, Xn)
  fit_known <- drop(ZLn %*% P$u + Xn %*% P$beta)
  fit_none <- drop(Xn %*% P$beta)
  var_known <- row_var(A, P)
  Vb <- P$s^2 * P$Cinv[P$ib, P$ib]
  var_none <- rowSums((Xn %*% Vb) * Xn)
  # lme4's own prediction as a check. The grouping columns are passed as factors whose
  # levels start with the model's levels: lme4 1.1-31 mismatches levels when the training
  # column was integer (Exam's school) and newdata's is character (it matches "2" to the
  # level "10"), so character labels must not be passed as they are.
  nd <- newdata
  for (term in terms) {
    v <- term$group
    if (v %in% names(nd)) nd[[v]] <- factor(nd[[v]], levels = union(term$levels, unique(nd[[v]])))
  }
  lme4_pred <- predict(m, newdata = nd, allow.new.levels = TRUE)
  list(prediction = fit_known, prediction_none = fit_none,
       se = sqrt(var_known + prior_var), se_fixed_only = sqrt(var_none),
       se_known_part = sqrt(var_known), prior_var_new_levels = prior_var,
       group_status = status,
       check_vs_lme4_predict = max(abs(lme4_pred - fit_known)))
}

rows_record <- function(newdata) {
  lapply(as.list(newdata), function(v) arr(if (is.factor(v)) as.character(v) else v))
}


# ---- the models and their new rows ----------------------------------------------------

spec <- function(name, dataset, formula, REML = TRUE) {
  list(name = name, dataset = dataset, formula = formula, REML = REML)
}

MODELS <- list(
  spec("exam_null", "Exam", "normexam ~ 1 + (1 | school)"),
  spec("exam_ri_standLRT", "Exam", "normexam ~ standLRT + (1 | school)"),
  spec("exam_rs", "Exam", "normexam ~ standLRT + (standLRT | school)"),
  spec("exam_rs_ML", "Exam", "normexam ~ standLRT + (standLRT | school)", REML = FALSE),
  spec("exam_rs_schavg", "Exam", "normexam ~ standLRT + schavg + (1 + standLRT | school)"),
  spec("exam_cross_level", "Exam", "normexam ~ standLRT * schavg + (1 + standLRT | school)"),
  spec("sleepstudy_rs", "sleepstudy", "Reaction ~ Days + (Days | Subject)"),
  spec("penicillin_crossed", "Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"))

# 20 rows with a level not in the data, and 20 rows of known levels at other x values.
# Rows are drawn with a fixed seed per data set; grouping columns become character.
new_rows <- function(dataset, dat) {
  set.seed(20240705)
  pick <- sample(nrow(dat), 20)
  base <- dat[pick, , drop = FALSE]
  rownames(base) <- NULL
  for (v in names(base)) if (is.factor(base[[v]])) base[[v]] <- as.character(base[[v]])
  if (dataset == "Exam") {
    base$school <- as.character(base$school)
    newg <- base
    newg$school <- NEW_LABEL
    known <- base
    known$standLRT <- round(seq(-3, 3, length.out = 20), 4)    # other intake scores
    keep <- c("school", "standLRT", "schavg")
  } else if (dataset == "sleepstudy") {
    base$Subject <- as.character(base$Subject)
    newg <- base
    newg$Subject <- NEW_LABEL
    known <- base
    known$Days <- round(runif(20, -1, 12), 2)                 # other days, some outside 0..9
    keep <- c("Subject", "Days")
  } else if (dataset == "Penicillin") {
    newg <- base
    newg$plate[1:7] <- NEW_LABEL                               # new plate, known sample
    newg$sample[8:14] <- NEW_LABEL                             # known plate, new sample
    newg$plate[15:20] <- NEW_LABEL                             # both new
    newg$sample[15:20] <- NEW_LABEL
    known <- data.frame(plate = sample(levels(dat$plate), 20, replace = TRUE),
                        sample = sample(levels(dat$sample), 20, replace = TRUE))
    keep <- c("plate", "sample")
  }
  list(new_group = newg[, keep, drop = FALSE], known_group = known[, keep, drop = FALSE],
       source_rows = pick)
}

model_record <- function(s) {
  dat <- read_dataset(s$dataset)
  m <- suppressMessages(fit_model(s, dat))
  P <- dense_pieces(m)
  terms <- term_info(m)
  V <- as.matrix(vcov(m))
  Vdense <- P$s^2 * P$Cinv[P$ib, P$ib]
  vcov_diff <- max(abs(Vdense - V))
  vcov_rel <- vcov_diff / max(abs(V))
  stopifnot(vcov_rel < 1e-10)

  A <- cbind(P$ZL, P$X)
  f_all <- drop(P$ZL %*% P$u + P$X %*% P$beta)
  f_none <- drop(P$X %*% P$beta)
  fitted_diff <- max(abs(f_all - fitted(m)))
  stopifnot(fitted_diff < 1e-8 * max(1, max(abs(f_all))))
  keep <- seq_len(min(nrow(A), MAX_ROWS))
  se_all <- sqrt(row_var(A[keep, , drop = FALSE], P))
  se_none <- sqrt(rowSums((P$X[keep, , drop = FALSE] %*% V) * P$X[keep, , drop = FALSE]))

  # Conditional covariance of b given beta: s^2 L (L'Z'Z L + I)^{-1} L'; and of b jointly
  # with beta's uncertainty: s^2 L [C^{-1}]_{uu} L'. Compare the first with lme4's condVar.
  Lm <- as.matrix(t(P$Lt))
  cond_given_beta <- P$s^2 * Lm %*% solve(crossprod(P$ZL) + diag(P$q)) %*% t(Lm)
  cond_joint <- P$s^2 * Lm %*% P$Cinv[P$iu, P$iu] %*% t(Lm)
  re <- ranef_list(m)
  per_level <- function(M, term, j) {
    idx <- term$offset + (j - 1) * term$nc + seq_len(term$nc)
    M[idx, idx, drop = FALSE]
  }
  condvar_diff <- 0
  condvar_joint <- list()
  for (term in terms) {
    lv <- term$levels
    cv <- re[[term$group]]$condvar
    for (j in seq_along(lv)) {
      condvar_diff <- max(condvar_diff, abs(per_level(cond_given_beta, term, j) - cv[[j]]))
    }
    condvar_joint[[term$group]] <- lapply(seq_along(lv), function(j) {
      x <- per_level(cond_joint, term, j); if (length(x) == 1) drop(x) else x })
  }

  nr <- new_rows(s$dataset, dat)
  pn <- predict_rows(m, P, terms, nr$new_group)
  pk <- predict_rows(m, P, terms, nr$known_group)
  prior_cov <- lapply(terms, function(t) {
    D <- P$s^2 * t$T %*% t(t$T)
    list(group = t$group, columns = arr(t$columns), T = t$T, D = D)
  })

  list(
    name = s$name, dataset = s$dataset, formula = s$formula, REML = s$REML,
    nobs = nobs(m), sigma = P$s,
    theta = unname(getME(m, "theta")), theta_names = names(getME(m, "theta")),
    fixef = as.list(P$beta), vcov_fixef = unname(V),
    prior_covariance = prior_cov,
    checks = list(
      vcov_max_abs_diff = vcov_diff, vcov_max_rel_diff = vcov_rel,
      vcov_agrees_1e10 = vcov_rel < 1e-10,
      fitted_max_abs_diff = fitted_diff,
      condvar_given_beta_vs_lme4_max_abs_diff = condvar_diff,
      new_group_prediction_vs_lme4_predict = pn$check_vs_lme4_predict,
      known_group_prediction_vs_lme4_predict = pk$check_vs_lme4_predict),
    n_rows_recorded = length(keep),
    fitted_all = f_all[keep], fitted_none = f_none[keep],
    se_fit_all = se_all, se_fit_none = se_none,
    ranef = re,
    condvar_joint = condvar_joint,
    new_group = list(
      rows = rows_record(nr$new_group), source_rows = nr$source_rows,
      group_status = pn$group_status,
      prediction = pn$prediction, prediction_none = pn$prediction_none,
      se_new_group = pn$se, se_fixed_only = pn$se_fixed_only,
      se_known_part = pn$se_known_part, prior_var_new_levels = pn$prior_var_new_levels),
    known_group = list(
      rows = rows_record(nr$known_group),
      group_status = pk$group_status,
      prediction = pk$prediction, prediction_none = pk$prediction_none,
      se_known_group = pk$se, se_fixed_only = pk$se_fixed_only),
    lme4_version = as.character(packageVersion("lme4")))
}


# ---- a held-out subject, conditioned on its own rows ----------------------------------

# Conditional mode and covariance of one group's random effects given its rows y_j at
# fixed (theta, beta, sigma): D = s^2 T T', V = Z_j D Z_j' + s^2 I,
# mode = D Z_j' V^{-1} (y_j - X_j beta), cov = D - D Z_j' V^{-1} Z_j D.
condition_on <- function(D, Zj, Xj, yj, beta, s) {
  V <- Zj %*% D %*% t(Zj) + s^2 * diag(nrow(Zj))
  Vi <- solve(V)
  list(mode = drop(D %*% t(Zj) %*% Vi %*% (yj - Xj %*% beta)),
       cov = D - D %*% t(Zj) %*% Vi %*% Zj %*% D)
}

newgroup_conditioning <- function() {
  dat <- read_dataset("sleepstudy")
  held <- 308
  train <- dat[dat$Subject != held, ]
  test <- dat[dat$Subject == held, ]
  s <- spec("sleepstudy_rs_without_308", "sleepstudy", "Reaction ~ Days + (Days | Subject)")
  m <- suppressMessages(fit_model(s, train))
  sig <- sigma(m); beta <- fixef(m)
  T <- as.matrix(t(getME(m, "Lambdat")))[1:2, 1:2]
  D <- sig^2 * T %*% t(T)
  one <- function(rows) {
    d <- test[rows, ]
    Zj <- cbind(1, d$Days); Xj <- cbind(1, d$Days)
    r <- condition_on(D, Zj, Xj, d$Reaction, beta, sig)
    list(rows_used = rows, Days = d$Days, Reaction = d$Reaction,
         mode = r$mode, cov = r$cov,
         prediction_at_rows = drop(Xj %*% beta + Zj %*% r$mode))
  }
  # Check of the definition on a training subject: the same formula gives lme4's mode
  # and conditional variance (both conditional on beta-hat) for Subject 309.
  d9 <- train[train$Subject == 309, ]
  r9 <- condition_on(D, cbind(1, d9$Days), cbind(1, d9$Days), d9$Reaction, beta, sig)
  re <- ranef(m, condVar = TRUE)$Subject
  k <- which(rownames(re) == "309")
  check_mode <- max(abs(r9$mode - unlist(re[k, ])))
  check_cov <- max(abs(r9$cov - attr(re, "postVar")[, , k]))
  list(
    name = "newgroup_conditioning", dataset = "sleepstudy", formula = s$formula, REML = TRUE,
    held_out_subject = as.character(held),
    fit = list(nobs = nobs(m), theta = unname(getME(m, "theta")),
               theta_names = names(getME(m, "theta")), sigma = sig,
               fixef = as.list(beta), logLik = as.numeric(logLik(m))),
    D = D, terms = c("(Intercept)", "Days"),
    first_3_rows = one(1:3),
    all_10_rows = one(seq_len(nrow(test))),
    check_subject_309 = list(mode_vs_lme4_ranef = check_mode, cov_vs_lme4_condvar = check_cov),
    lme4_version = as.character(packageVersion("lme4")))
}


# ---- main -----------------------------------------------------------------------------

for (s in MODELS) {
  rec <- model_record(s)
  write_json_file(rec, file.path(ref_dir, paste0(s$name, ".json")))
  ck <- rec$checks
  cat(sprintf("%-20s vcov rel %.1e fitted %.1e condvar %.1e predict new %.1e known %.1e\n",
              s$name, ck$vcov_max_rel_diff, ck$fitted_max_abs_diff,
              ck$condvar_given_beta_vs_lme4_max_abs_diff,
              ck$new_group_prediction_vs_lme4_predict, ck$known_group_prediction_vs_lme4_predict))
}
ng <- newgroup_conditioning()
write_json_file(ng, file.path(ref_dir, "newgroup_conditioning.json"))
cat(sprintf("newgroup_conditioning: check on 309: mode %.1e cov %.1e\n",
            ng$check_subject_309$mode_vs_lme4_ranef, ng$check_subject_309$cov_vs_lme4_condvar))
pk <- c("lme4", "Matrix", "jsonlite")
write_json_file(list(R_version = R.version.string,
                     packages = lapply(setNames(pk, pk), function(p) as.character(packageVersion(p))),
                     platform = R.version$platform, lapack = La_version()),
                file.path(ref_dir, "session.json"))
