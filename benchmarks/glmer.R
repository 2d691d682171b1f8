# Benchmark lme4::glmer on one case: the R side of benchmarks/glmm.py.
#
# Usage: Rscript --vanilla glmer.R CASE.json
#
# The job names the data (a package data set, "lme4::cbpp", or a CSV path with its
# factor columns), the formula, family, link, nAGQ and the number of repeats. Only
# the glmer() call is timed (elapsed seconds, after a garbage collection). Peak
# memory is measured as benchmarks/memory.py does: the resident-set high-water mark
# (VmHWM) reset through /proc/self/clear_refs before the first call and read after
# it, minus the resident size before (MiB; NA where /proc is missing). Prints one
# JSON line: wall and CPU seconds of every run, peak_mb, logLik, converged (no lme4 message).

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

job <- fromJSON(commandArgs(trailingOnly = TRUE)[1])

read_data <- function(job) {
  if (startsWith(job$data, "package:")) {
    spec <- strsplit(sub("package:", "", job$data), "::")[[1]]
    suppressPackageStartupMessages(library(spec[1], character.only = TRUE))
    return(get(spec[2], envir = asNamespace(spec[1])))
  }
  data <- read.csv(job$data)
  for (column in job$factors) data[[column]] <- factor(data[[column]])
  data
}

status_mb <- function(field) {
  line <- grep(paste0("^", field, ":"), readLines("/proc/self/status"), value = TRUE)
  as.numeric(strsplit(trimws(sub(".*:", "", line)), " +")[[1]][1]) / 1024
}

data <- read_data(job)
family <- get(job$family)(link = job$link)
fit_once <- function() {
  glmer(as.formula(job$formula), data = data, family = family, nAGQ = job$nAGQ)
}
invisible(suppressWarnings(suppressMessages(
  glmer(r ~ 1 + (1 | g), data = data.frame(r = rep(0:1, 20), g = rep(1:5, 8)),
        family = binomial)
)))

gc()
base <- tryCatch({
  writeLines("5", "/proc/self/clear_refs")
  status_mb("VmRSS")
}, error = function(e) NA_real_, warning = function(w) NA_real_)
notes <- character()
cpu_of <- function(t) t[["user.self"]] + t[["sys.self"]] + t[["user.child"]] + t[["sys.child"]]
start <- proc.time()[["elapsed"]]
cpu <- cpu_of(proc.time())
fit <- withCallingHandlers(fit_once(),
  warning = function(w) {
    notes <<- c(notes, conditionMessage(w))
    invokeRestart("muffleWarning")
  },
  message = function(m) {
    notes <<- c(notes, trimws(conditionMessage(m)))
    invokeRestart("muffleMessage")
  })
seconds <- proc.time()[["elapsed"]] - start
cpu_seconds <- cpu_of(proc.time()) - cpu
peak <- if (is.na(base)) NA_real_ else max(status_mb("VmHWM") - base, 0)
while (length(seconds) < job$repeats && sum(seconds) < job$budget) {
  start <- proc.time()[["elapsed"]]
  cpu <- cpu_of(proc.time())
  invisible(suppressWarnings(suppressMessages(fit_once())))
  seconds <- c(seconds, proc.time()[["elapsed"]] - start)
  cpu_seconds <- c(cpu_seconds, cpu_of(proc.time()) - cpu)
}
messages <- fit@optinfo$conv$lme4$messages
cat(toJSON(list(
  status = "ok",
  seconds = seconds,
  cpu_seconds = cpu_seconds,
  peak_mb = peak,
  loglik = as.numeric(logLik(fit)),
  converged = length(messages) == 0,
  notes = substr(unique(notes), 1, 100)
), auto_unbox = TRUE, digits = NA, na = "null"), "\n", sep = "")
