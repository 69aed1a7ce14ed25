// Runs many signer invocations in one JVM (a JVM start costs about a second): one job a line on
// stdin, fields separated by tabs: "itext" or "pdfbox", then that signer's arguments. Jobs run
// in order, so a line may use the output of an earlier one (sign, then LTV-extend).

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

public final class Batch {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            String[] f = line.split("\t");
            String[] rest = Arrays.copyOfRange(f, 1, f.length);
            if (f[0].equals("itext")) {
                ItextSign.main(rest);
            } else if (f[0].equals("pdfbox")) {
                PdfboxSign.main(rest);
            } else {
                throw new IllegalArgumentException("unknown signer " + f[0]);
            }
            System.out.println("done\t" + line);
        }
    }
}
