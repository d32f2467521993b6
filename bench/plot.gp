# plot.gp - the benchmark suite's figure (run by bench/run):
#   gnuplot -c bench/plot.gp DIR OUT.png TITLE JOBS
# DIR/scaling.dat: jobs, then MB/s of pmap and pigz on the large file and of
# pmap, pigz -r and xargs -P gzip on the small files ("-" = not measured).
# DIR/peers.dat: "dataset -level", then MB/s of pmap, pigz, gzip, xargs.
dir = ARG1
set terminal pngcairo size 1500,600 font "DejaVu Sans,10"
set output ARG2
set datafile missing "-"
set multiplot layout 1,2 title ARG3

set title "Compression throughput against jobs (level 6)"
set xlabel "jobs"
set ylabel "MB/s (uncompressed)"
set xtics 1
set xrange [0.5:*]
set yrange [0:*]
set grid ytics
set key top left
plot dir."/scaling.dat" using 1:2 with linespoints lw 2 pt 7 title "pmap, large file", \
     "" using 1:3 with linespoints lw 2 pt 5 dt 2 title "pigz, large file", \
     "" using 1:4 with linespoints lw 2 pt 7 title "pmap, small files", \
     "" using 1:5 with linespoints lw 2 pt 5 dt 2 title "pigz -r, small files", \
     "" using 1:6 with linespoints lw 2 pt 9 dt 3 title "xargs -P gzip, small files"

set title "Compression throughput against peers (".ARG4." jobs)"
unset xlabel
set xrange [*:*]
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -30 nomirror
set key top right
plot dir."/peers.dat" using 2:xtic(1) title "pmap", \
     "" using 3 title "pigz -p ".ARG4, \
     "" using 4 title "gzip", \
     "" using 5 title "find | xargs -P ".ARG4." gzip"
unset multiplot
