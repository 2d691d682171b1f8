# lme4's timings for benchmarks/inference_intervals.py: profile intervals of Exam model 5
# and bootMer replicates of the sleepstudy slope model. Prints one JSON object.
#
#   Rscript benchmarks/inference_intervals.R [repeats] [nsim]
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
repeats <- if (length(args) >= 1) as.integer(args[1]) else 3L
nsim <- if (length(args) >= 2) as.integer(args[2]) else 500L
here <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f) == 1) dirname(normalizePath(f)) else normalizePath("benchmarks")
})
data_dir <- file.path(here, "..", "tests", "data")
exam <- read.csv(file.path(data_dir, "Exam.csv"), stringsAsFactors = TRUE)
exam$school <- factor(exam$school)
sleep <- read.csv(file.path(data_dir, "sleepstudy.csv"), stringsAsFactors = TRUE)
sleep$Subject <- factor(sleep$Subject)

m5 <- lmer(normexam ~ standLRT * schavg + (1 + standLRT | school), exam)
profile_seconds <- replicate(repeats, system.time(confint(m5, method = "profile",
                                                          quiet = TRUE))[["elapsed"]])
ss <- lmer(Reaction ~ Days + (Days | Subject), sleep)
fun <- function(x) c(lme4:::Cv_to_Sv(getME(x, "theta"), n = lengths(x@cnms), s = sigma(x)),
                     fixef(x))
set.seed(1)
boot_seconds <- system.time(bootMer(ss, fun, nsim = nsim, use.u = FALSE))[["elapsed"]]
cat(toJSON(list(profile_seconds = profile_seconds, boot_nsim = nsim,
                boot_seconds = boot_seconds), auto_unbox = TRUE, digits = NA), "\n")
