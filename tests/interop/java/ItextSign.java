// iText 5 as agencies use it: a CAdES detached signature (optionally B-T through a TSA), and
// iText's LTV extension (LtvVerification writes /DSS with /VRI entries, LtvTimestamp a document
// timestamp). Compiled at test time against Debian's jars; never shipped.
//
//   sign IN OUT P12 PASSWORD [TSA_URL]   signature field "Signature1", SHA-256, CAdES
//   ltv  IN OUT TSA_URL                  OCSP+CRL for every signature's whole chain, then a doc timestamp
//   mediabox IN OUT                      an append-mode update that shrinks page 1's /MediaBox: a visible
//                                        change after signing, the neighbour of an identical /MediaBox copy
//   overtext IN OUT                      an append-mode update that writes new text over page 1 (the
//                                        incremental saving attack, done with an ordinary tool)

import com.itextpdf.text.pdf.AcroFields;
import com.itextpdf.text.pdf.BaseFont;
import com.itextpdf.text.pdf.PdfContentByte;
import com.itextpdf.text.pdf.PdfArray;
import com.itextpdf.text.pdf.PdfDictionary;
import com.itextpdf.text.pdf.PdfName;
import com.itextpdf.text.pdf.PdfReader;
import com.itextpdf.text.pdf.PdfSignatureAppearance;
import com.itextpdf.text.pdf.PdfStamper;
import com.itextpdf.text.pdf.security.BouncyCastleDigest;
import com.itextpdf.text.pdf.security.CrlClientOnline;
import com.itextpdf.text.pdf.security.ExternalDigest;
import com.itextpdf.text.pdf.security.ExternalSignature;
import com.itextpdf.text.pdf.security.LtvTimestamp;
import com.itextpdf.text.pdf.security.LtvVerification;
import com.itextpdf.text.pdf.security.MakeSignature;
import com.itextpdf.text.pdf.security.OcspClientBouncyCastle;
import com.itextpdf.text.pdf.security.PrivateKeySignature;
import com.itextpdf.text.pdf.security.TSAClient;
import com.itextpdf.text.pdf.security.TSAClientBouncyCastle;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Security;
import java.security.cert.Certificate;
import java.util.Calendar;
import java.util.List;
import org.bouncycastle.jce.provider.BouncyCastleProvider;

public final class ItextSign {
    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        if (args[0].equals("sign")) {
            sign(args[1], args[2], args[3], args[4], args.length > 5 ? args[5] : null);
        } else if (args[0].equals("ltv")) {
            ltv(args[1], args[2], args[3]);
        } else if (args[0].equals("mediabox")) {
            mediabox(args[1], args[2]);
        } else if (args[0].equals("overtext")) {
            overtext(args[1], args[2]);
        } else {
            throw new IllegalArgumentException("unknown mode " + args[0]);
        }
    }

    static void sign(String in, String out, String p12, String password, String tsaUrl) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (FileInputStream f = new FileInputStream(p12)) {
            ks.load(f, password.toCharArray());
        }
        String alias = ks.aliases().nextElement();
        PrivateKey key = (PrivateKey) ks.getKey(alias, password.toCharArray());
        Certificate[] chain = ks.getCertificateChain(alias);
        PdfReader reader = new PdfReader(in);
        try (FileOutputStream os = new FileOutputStream(out)) {
            PdfStamper stamper = PdfStamper.createSignature(reader, os, '\0', null, true);
            PdfSignatureAppearance sap = stamper.getSignatureAppearance();
            sap.setReason("iText 5 interop");
            sap.setLocation("Ulaanbaatar");
            sap.setSignDate(Calendar.getInstance());
            ExternalDigest digest = new BouncyCastleDigest();
            ExternalSignature signature = new PrivateKeySignature(key, "SHA-256", "BC");
            TSAClient tsa = tsaUrl == null ? null : new TSAClientBouncyCastle(tsaUrl, null, null, 8192, "SHA-256");
            MakeSignature.signDetached(sap, digest, signature, chain, null, null, tsa, 0,
                    MakeSignature.CryptoStandard.CADES);
        }
    }

    static void ltv(String in, String out, String tsaUrl) throws Exception {
        PdfReader reader = new PdfReader(in);
        try (FileOutputStream os = new FileOutputStream(out)) {
            PdfStamper stamper = PdfStamper.createSignature(reader, os, '\0', null, true);
            LtvVerification v = stamper.getLtvVerification();
            AcroFields fields = stamper.getAcroFields();
            List<String> names = fields.getSignatureNames();
            for (String name : names) {
                boolean ok = v.addVerification(name, new OcspClientBouncyCastle(null), new CrlClientOnline(),
                        LtvVerification.CertificateOption.WHOLE_CHAIN, LtvVerification.Level.OCSP_CRL,
                        LtvVerification.CertificateInclusion.YES);
                if (!ok) {
                    throw new IllegalStateException("no validation data added for " + name);
                }
            }
            PdfSignatureAppearance sap = stamper.getSignatureAppearance();
            LtvTimestamp.timestamp(sap, new TSAClientBouncyCastle(tsaUrl, null, null, 8192, "SHA-256"), null);
        }
    }

    static void mediabox(String in, String out) throws Exception {
        PdfReader reader = new PdfReader(in);
        try (FileOutputStream os = new FileOutputStream(out)) {
            PdfStamper stamper = new PdfStamper(reader, os, '\0', true);
            PdfDictionary page = reader.getPageN(1);
            page.put(PdfName.MEDIABOX, new PdfArray(new float[] {0, 400, 595.28f, 841.89f}));
            stamper.markUsed(page);
            stamper.close();
        }
    }

    static void overtext(String in, String out) throws Exception {
        PdfReader reader = new PdfReader(in);
        try (FileOutputStream os = new FileOutputStream(out)) {
            PdfStamper stamper = new PdfStamper(reader, os, '\0', true);
            PdfContentByte over = stamper.getOverContent(1);
            over.beginText();
            over.setFontAndSize(BaseFont.createFont(BaseFont.HELVETICA, BaseFont.WINANSI, false), 18);
            over.showTextAligned(PdfContentByte.ALIGN_LEFT, "VOID - amount 1,000,000", 72, 420, 0);
            over.endText();
            stamper.close();
        }
    }
}
