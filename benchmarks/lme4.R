# Benchmark lme4::lmer on one data set: the R side of benchmarks/run.py.
#
# Usage: Rscript --vanilla lme4.R JOB.json
#
# Speaks worker.py's protocol: reads the job (CSV of the data, grouping columns,
# models, repeats, time budget), warms lme4 up on sleepstudy, then for each model
# writes JSON lines to stdout: {"event": "start", ...} before a measurement and
# {"event": "result", ...} after it. Only the lmer() call is timed (elapsed time,
# after a garbage collection), never the CSV reading.
#
# Peak memory: as memory.py, the process's resident-set high-water mark (VmHWM)
# is reset through /proc/self/clear_refs before the call and read after it;
# the peak is VmHWM(after) - VmRSS(before), in MiB (NA where /proc is missing).
#
# Seconds per evaluation (job$per_eval): the deviance function of the model
# (lmer(..., devFunOnly = TRUE)) evaluated repeatedly at the fitted theta.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

emit <- function(...) {
  cat(toJSON(list(...), auto_unbox = TRUE, digits = NA, null = "null", na = "null"),
      "\n", sep = "")
  flush(stdout())
}

# Wall clock in seconds: bench's high-resolution timer when installed, else proc.time
# (1 ms resolution).
now <- if (requireNamespace("bench", quietly = TRUE)) {
  function() unclass(bench::hires_time())
} else {
  function() proc.time()[["elapsed"]]
}

status_mb <- function(field) {
  line <- grep(paste0("^", field, ":"), readLines("/proc/self/status"), value = TRUE)
  as.numeric(strsplit(trimws(sub(".*:", "", line)), " +")[[1]][1]) / 1024
}

# Run expr after a collection, returning list(value, seconds, peak_mb).
with_memory <- function(expr_fun) {
  gc()
  base <- tryCatch({
    writeLines("5", "/proc/self/clear_refs")
    status_mb("VmRSS")
  }, error = function(e) NA_real_, warning = function(w) NA_real_)
  start <- now()
  value <- expr_fun()
  seconds <- now() - start
  peak <- if (is.na(base)) NA_real_ else max(status_mb("VmHWM") - base, 0)
  list(value = value, seconds = seconds, peak_mb = peak)
}

# Repeat expr_fun as worker.measure does: the first run measures memory (after a
# collection) and records warnings and messages; the others are only timed, with no
# collection forced before them. A fit that runs once is timed by its memory run.
measure <- function(expr_fun, repeats, budget) {
  caught <- character()
  first <- withCallingHandlers(
    with_memory(expr_fun),
    warning = function(w) {
      caught <<- union(caught, substr(paste("warning:", conditionMessage(w)), 1, 120))
      invokeRestart("muffleWarning")
    },
    message = function(m) {
      caught <<- union(caught, substr(paste("message:", trimws(conditionMessage(m))), 1, 120))
      invokeRestart("muffleMessage")
    })
  out <- first$value
  seconds <- c()
  while (1 + length(seconds) < repeats) {
    so_far <- if (length(seconds)) seconds else first$seconds
    if (first$seconds + sum(seconds) + median(so_far) > budget) break
    out <- NULL
    out <- suppressWarnings(suppressMessages({
      start <- now()
      value <- expr_fun()
      seconds <- c(seconds, now() - start)
      value
    }))
  }
  if (!length(seconds)) seconds <- first$seconds
  list(value = out, seconds = seconds, peak_mb = first$peak_mb, warnings = I(caught))
}

read_data <- function(path, factors) {
  frame <- as.data.frame(data.table::fread(path, showProgress = FALSE))
  for (f in factors) frame[[f]] <- factor(frame[[f]])
  frame
}

seconds_per_eval <- function(formula, frame, reml, theta) {
  dev <- lmer(formula, frame, REML = reml, devFunOnly = TRUE)
  n <- 1
  repeat {
    start <- now()
    for (i in seq_len(n)) dev(theta)
    t <- now() - start
    if (t >= 0.5 || n >= 1000) return(t / n)
    n <- n * 4
  }
}

main <- function(job_path) {
  job <- fromJSON(job_path, simplifyVector = TRUE)
  emit(event = "hello", tool = "lme4",
       version = paste0("lme4 ", packageVersion("lme4"), ", ", R.version.string,
                        ", BLAS ", basename(extSoftVersion()[["BLAS"]])))
  frame <- read_data(job$csv, job$factors)
  invisible(lmer(Reaction ~ Days + (Days | Subject), sleepstudy))  # warm-up
  predict_frame <- if (!is.null(job$predict_csv)) read_data(job$predict_csv, job$factors)
  models <- job$models
  for (i in seq_len(nrow(models))) {
    name <- models$name[i]
    formula <- as.formula(models$formula[i])
    reml <- models$reml[i]
    emit(event = "start", model = name, kind = "fit")
    m <- tryCatch(
      measure(function() lmer(formula, frame, REML = reml), job$repeats, job$budget),
      error = function(e) e)
    if (inherits(m, "error")) {
      emit(event = "result", model = name, kind = "fit", status = "failed",
           reason = conditionMessage(m))
      next
    }
    fit <- m$value
    per_eval <- if (isTRUE(job$per_eval))
      tryCatch(seconds_per_eval(formula, frame, reml, getME(fit, "theta")),
               error = function(e) NULL)
    emit(event = "result", model = name, kind = "fit", status = "ok",
         seconds = I(m$seconds), peak_mb = m$peak_mb, memory_method = "VmHWM",
         loglik = as.numeric(logLik(fit)), n_eval = fit@optinfo$feval,
         converged = length(fit@optinfo$conv$lme4$messages) == 0,
         s_per_eval = per_eval, warnings = m$warnings)
    if (!is.null(predict_frame)) {
      emit(event = "start", model = name, kind = "predict")
      p <- tryCatch(
        measure(function() predict(fit, newdata = predict_frame, allow.new.levels = TRUE),
                job$repeats, job$budget),
        error = function(e) e)
      if (inherits(p, "error")) {
        emit(event = "result", model = name, kind = "predict", status = "failed",
             reason = conditionMessage(p))
        next
      }
      emit(event = "result", model = name, kind = "predict", status = "ok",
           seconds = I(p$seconds), peak_mb = p$peak_mb, memory_method = "VmHWM",
           n_rows = nrow(predict_frame), warnings = p$warnings)
    }
  }
}

main(commandArgs(trailingOnly = TRUE)[1])
