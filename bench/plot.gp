# make bench-plot: the comparison of the last make bench (build/bench.dat, written by
# mpbench -p). Top: horizontal bars, one group per workload and placement (cross: the
# parties on different CPUs; shared: on one CPU), on a log scale: each bar is a
# system's speed relative to the fastest system measured in that group (for times,
# speed = 1/time), labelled with its own figure and mp.h's ratio to it. Bottom: the
# scale curves: queue_NpNc_64B (msg/s against N producers and N consumers, mp.h
# beside the peers) and pool_map_cpu (parallel efficiency against N workers, beside N
# bare forked processes doing the same work: what the machine itself gives).
#   gnuplot -e "datafile='build/bench.dat'; outfile='docs/bench.png'" bench/plot.gp
if (!exists("datafile")) datafile = "build/bench.dat"
if (!exists("outfile")) outfile = "docs/bench.png"

machine = system("sed -n 's/^# title: //p' " . datafile)
# the bars (block 0, after the title line); a run of scale workloads alone has none
nbars = int(system("awk 'NR > 1 && /^$/ {exit} NR > 1 {n++} END {print n + 0}' " . datafile))
rows = 0
kmin = -2
if (nbars > 0) {
    stats datafile index 0 using 1 nooutput
    rows = STATS_max + 1
    stats datafile index 0 using 2 nooutput
    kmin = floor(log10(STATS_min))
    kmin = kmin > -2 ? -2 : kmin
}
xmin = 10**kmin
# the scale blocks after the bars' two, in this order, when the run measured them
has_q = int(system("grep -c '^# queue_NpNc_64B ' " . datafile))
has_p = int(system("grep -c '^# pool_map_cpu ' " . datafile))
qdata = "< sed -n '/^# queue_NpNc_64B /,/^$/p' " . datafile
pdata = "< sed -n '/^# pool_map_cpu /,/^$/p' " . datafile
curves_h = 360
bars_h = nbars > 0 ? 150 + rows * 19 : 60
height = bars_h + curves_h

set terminal pngcairo size 1100, height font "Sans,10"
set output outfile
set multiplot
set origin 0, 1.0 * curves_h / height
set size 1, 1.0 * bars_h / height
if (nbars > 0) {
    set title "mp.h beside the peers: speed relative to the fastest system of each workload (log scale; longer is faster)\n{/*0.9 ".machine."}" noenhanced
    set title enhanced
    set logscale x
    set xrange [xmin:30]
    set yrange [rows:-1]
    set xtics () nomirror
    do for [k=kmin:0] {
        set xtics add (k == 0 ? "1 (fastest)" : sprintf("1/%d", 10**(-k)) 10**k)
    }
    set ytics scale 0 nomirror noenhanced font ",9"
    set grid xtics lc rgb "#dddddd"
    set border 3
    set style fill solid 0.85 noborder
    set key below horizontal samplen 1.5 font ",9"
    set lmargin 26
    set rmargin 2

    plot datafile index 0 using (sqrt(xmin*$2)):1:(xmin):2:($1-0.4):($1+0.4):3:ytic(4) \
             with boxxyerror lc rgb variable notitle, \
         '' index 0 using ($2*1.12):1:5 with labels left noenhanced font ",8" notitle, \
         '' index 1 using (xmin*1.08):1:2 with labels left noenhanced font "Sans Bold,9" notitle, \
         NaN with boxes lc rgb "#1f77b4" title "mp.h", \
         NaN with boxes lc rgb "#ff7f0e" title "peers", \
         NaN with boxes lc rgb "#bbbbbb" title "limits (spinning, no blocking)"
} else {
    set title "mp.h: the scale curves\n".machine noenhanced
    unset border
    unset tics
    plot [0:1] [0:1] NaN notitle
}

# ---- the scale curves ----
reset
set termoption noenhanced
set datafile columnheaders
set size 0.5, 0.95 * curves_h / height
set lmargin 10
set rmargin 3
set grid lc rgb "#dddddd"
set border 3
set xtics nomirror
set ytics nomirror
set key bottom right font ",9" noenhanced
set logscale x 2
set xlabel "N producers and N consumers (processes; oversubscribed past 1 per CPU)"
set ylabel "M msg/s (higher is better)"
set title "queue_NpNc_64B: 1,000,000 messages of 64 B, parties cross (alternating CPUs)" font ",10"
set origin 0, 0
set yrange [0:*]
set xrange [0.8:20]
set xtics (1, 2, 4, 8, 16)
colour(k) = k == 2 ? "#1f77b4" : k == 3 ? "#ff7f0e" : k == 4 ? "#2ca02c" : "#9467bd"
if (has_q) {
    plot for [k=2:*] qdata using 1:(column(k) / 1e6) with linespoints lw 2 pt 7 \
         lc rgb colour(k) title columnhead(k)
}
set origin 0.5, 0
unset logscale x
nmax = 2
if (has_p) { stats pdata using 1 nooutput; nmax = STATS_max }
set xrange [0.5:nmax + 0.5]
set xtics 1
set xlabel "N workers (1 .. mp_cpu_count())"
set ylabel "parallel efficiency T1 / (N x TN)"
set title "pool_map_cpu: a CPU-bound map, about 20 us per item" font ",10"
set yrange [0:1.15]
if (has_p) {
    plot for [k=2:*] pdata using 1:k with linespoints lw 2 pt 7 \
         lc rgb (k == 2 ? "#1f77b4" : "#999999") title columnhead(k), \
         0.9 with lines dt 2 lc rgb "#888888" title "target 0.9", \
         1 with lines lc rgb "#cccccc" title "ideal"
}
unset multiplot
