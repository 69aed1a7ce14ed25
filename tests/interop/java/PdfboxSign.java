// Apache PDFBox 2 with BouncyCastle, the way EU DSS and many integrators sign: PDDocument.addSignature
// with a SignatureInterface that builds the CMS (CMSSignedDataGenerator), then saveIncremental.
// Compiled at test time against Debian's jars; never shipped.
//
//   IN OUT P12 PASSWORD SUBFILTER [TSA_URL]
//   SUBFILTER: ETSI.CAdES.detached (adds ESS signing-certificate-v2, no signing time: PAdES) or
//              adbe.pkcs7.detached (plain CMS with a signing time)
//   TSA_URL:   adds an RFC 3161 signature timestamp over the signature value (B-T)

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Calendar;
import java.util.Hashtable;
import java.util.List;
import org.apache.pdfbox.pdmodel.PDDocument;
import org.apache.pdfbox.pdmodel.interactive.digitalsignature.PDSignature;
import org.apache.pdfbox.pdmodel.interactive.digitalsignature.SignatureInterface;
import org.apache.pdfbox.pdmodel.interactive.digitalsignature.SignatureOptions;
import org.bouncycastle.asn1.ASN1EncodableVector;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.ASN1Primitive;
import org.bouncycastle.asn1.DERSet;
import org.bouncycastle.asn1.cms.Attribute;
import org.bouncycastle.asn1.cms.AttributeTable;
import org.bouncycastle.asn1.cms.CMSAttributes;
import org.bouncycastle.asn1.ess.ESSCertIDv2;
import org.bouncycastle.asn1.ess.SigningCertificateV2;
import org.bouncycastle.asn1.nist.NISTObjectIdentifiers;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.IssuerSerial;
import org.bouncycastle.cert.jcajce.JcaCertStore;
import org.bouncycastle.cms.CMSAttributeTableGenerator;
import org.bouncycastle.cms.CMSProcessableByteArray;
import org.bouncycastle.cms.CMSSignedData;
import org.bouncycastle.cms.CMSSignedDataGenerator;
import org.bouncycastle.cms.DefaultSignedAttributeTableGenerator;
import org.bouncycastle.cms.SignerInfoGenerator;
import org.bouncycastle.cms.SignerInformation;
import org.bouncycastle.cms.SignerInformationStore;
import org.bouncycastle.cms.SimpleAttributeTableGenerator;
import org.bouncycastle.cms.jcajce.JcaSignerInfoGeneratorBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;
import org.bouncycastle.tsp.TimeStampRequest;
import org.bouncycastle.tsp.TimeStampRequestGenerator;
import org.bouncycastle.tsp.TimeStampResponse;

public final class PdfboxSign implements SignatureInterface {
    private final PrivateKey key;
    private final Certificate[] chain;
    private final boolean cades;
    private final String tsaUrl;

    PdfboxSign(PrivateKey key, Certificate[] chain, boolean cades, String tsaUrl) {
        this.key = key;
        this.chain = chain;
        this.cades = cades;
        this.tsaUrl = tsaUrl;
    }

    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        String in = args[0], out = args[1], p12 = args[2], password = args[3], subFilter = args[4];
        String tsaUrl = args.length > 5 ? args[5] : null;
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (FileInputStream f = new FileInputStream(p12)) {
            ks.load(f, password.toCharArray());
        }
        String alias = ks.aliases().nextElement();
        PrivateKey key = (PrivateKey) ks.getKey(alias, password.toCharArray());
        Certificate[] chain = ks.getCertificateChain(alias);
        boolean cades = subFilter.equals("ETSI.CAdES.detached");
        try (PDDocument doc = PDDocument.load(new File(in));
                OutputStream os = new FileOutputStream(out)) {
            PDSignature sig = new PDSignature();
            sig.setFilter(PDSignature.FILTER_ADOBE_PPKLITE);
            sig.setSubFilter(cades ? PDSignature.SUBFILTER_ETSI_CADES_DETACHED
                    : PDSignature.SUBFILTER_ADBE_PKCS7_DETACHED);
            sig.setName("PDFBox interop");
            sig.setReason("PDFBox 2 interop");
            sig.setLocation("Ulaanbaatar");
            sig.setSignDate(Calendar.getInstance());
            SignatureOptions options = new SignatureOptions();
            options.setPreferredSignatureSize(32768);
            doc.addSignature(sig, new PdfboxSign(key, chain, cades, tsaUrl), options);
            doc.saveIncremental(os);
        }
    }

    @Override
    public byte[] sign(InputStream content) throws java.io.IOException {
        try {
            byte[] data = content.readAllBytes();
            X509Certificate cert = (X509Certificate) chain[0];
            String alg = key.getAlgorithm().equals("RSA") ? "SHA256withRSA" : "SHA256withECDSA";
            ContentSigner signer = new JcaContentSignerBuilder(alg).build(key);
            JcaSignerInfoGeneratorBuilder builder = new JcaSignerInfoGeneratorBuilder(
                    new JcaDigestCalculatorProviderBuilder().build());
            if (cades) {
                // PAdES: ESS signing-certificate-v2 binds the signer's certificate; no signingTime
                Hashtable<ASN1ObjectIdentifier, Attribute> attrs = new Hashtable<>();
                byte[] certHash = MessageDigest.getInstance("SHA-256").digest(cert.getEncoded());
                IssuerSerial issuerSerial = new IssuerSerial(
                        new GeneralNames(new GeneralName(X500Name.getInstance(cert.getIssuerX500Principal().getEncoded()))),
                        cert.getSerialNumber());
                ESSCertIDv2 id = new ESSCertIDv2(new AlgorithmIdentifier(NISTObjectIdentifiers.id_sha256), certHash, issuerSerial);
                attrs.put(PKCSObjectIdentifiers.id_aa_signingCertificateV2, new Attribute(
                        PKCSObjectIdentifiers.id_aa_signingCertificateV2, new DERSet(new SigningCertificateV2(id))));
                CMSAttributeTableGenerator gen = new DefaultSignedAttributeTableGenerator(new AttributeTable(attrs)) {
                    @Override
                    protected Hashtable createStandardAttributeTable(java.util.Map parameters) {
                        Hashtable t = super.createStandardAttributeTable(parameters);
                        t.remove(CMSAttributes.signingTime);
                        return t;
                    }
                };
                builder.setSignedAttributeGenerator(gen);
            }
            SignerInfoGenerator sig = builder.build(signer, cert);
            CMSSignedDataGenerator gen = new CMSSignedDataGenerator();
            gen.addSignerInfoGenerator(sig);
            gen.addCertificates(new JcaCertStore(Arrays.asList(chain)));
            CMSSignedData signed = gen.generate(new CMSProcessableByteArray(data), false);
            if (tsaUrl != null) {
                signed = addTimestamp(signed);
            }
            return signed.getEncoded();
        } catch (java.io.IOException e) {
            throw e;
        } catch (Exception e) {
            throw new java.io.IOException(e);
        }
    }

    private CMSSignedData addTimestamp(CMSSignedData signed) throws Exception {
        List<SignerInformation> out = new ArrayList<>();
        for (SignerInformation si : signed.getSignerInfos().getSigners()) {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(si.getSignature());
            TimeStampRequestGenerator reqGen = new TimeStampRequestGenerator();
            reqGen.setCertReq(true);
            TimeStampRequest req = reqGen.generate(NISTObjectIdentifiers.id_sha256, digest,
                    new java.math.BigInteger(64, new SecureRandom()));
            HttpURLConnection c = (HttpURLConnection) new URL(tsaUrl).openConnection();
            c.setDoOutput(true);
            c.setRequestMethod("POST");
            c.setRequestProperty("Content-Type", "application/timestamp-query");
            try (OutputStream o = c.getOutputStream()) {
                o.write(req.getEncoded());
            }
            byte[] body;
            try (InputStream i = c.getInputStream()) {
                body = i.readAllBytes();
            }
            TimeStampResponse resp = new TimeStampResponse(body);
            resp.validate(req);
            if (resp.getTimeStampToken() == null) {
                throw new IllegalStateException("TSA refused: " + resp.getStatusString());
            }
            ASN1Primitive token = ASN1Primitive.fromByteArray(resp.getTimeStampToken().getEncoded());
            ASN1EncodableVector v = new ASN1EncodableVector();
            v.add(new Attribute(PKCSObjectIdentifiers.id_aa_signatureTimeStampToken, new DERSet(token)));
            out.add(SignerInformation.replaceUnsignedAttributes(si, new AttributeTable(v)));
        }
        return CMSSignedData.replaceSigners(signed, new SignerInformationStore(out));
    }
}
